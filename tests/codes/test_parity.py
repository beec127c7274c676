"""SQLite and PostgreSQL give the same lookups and the same search rankings.

The first backend to run records its answers; the other backend must give
exactly the same (when only one backend is selected this checks nothing
beyond running cleanly).
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from mailbot.codes.edits import check
from mailbot.codes.lookup import lookup
from mailbot.codes.search import search

QUERIES = Path(__file__).resolve().parents[2] / "bench" / "search_queries.csv"
CODES = ["E11.22", "e1122", "E11.2", "S52.521A", "S23.420A", "C78.31", "L02.232", "J-1030", "J1010", "99213-25",
         "20610", "-59", "LT", "E11.99", "hello", "I42.0"]
_first: dict[str, object] = {}


def _same_as_other_backend(key: str, value: object) -> None:
    expected = _first.setdefault(key, value)
    assert value == expected


def test_lookups_match_across_backends(codes_db, db):
    with db.read() as s:
        for on in (date(2026, 5, 1), date(2026, 11, 2)):
            cards = [c.to_dict() for c in lookup(s, CODES, on)]
            _same_as_other_backend(f"lookup-{on}", cards)


def test_search_rankings_match_across_backends(codes_db, db):
    with open(QUERIES, newline="", encoding="utf-8") as fh:
        queries = [row["query"] for row in csv.DictReader(fh)][::5]
    with db.read() as s:
        ranked = {q: [(h.code, h.score) for h in search(s, q, limit=10)] for q in queries}
    _same_as_other_backend("search", ranked)


def test_checks_match_across_backends(codes_db, db):
    with db.read() as s:
        result = check(s, ["20610", "99213-25", "20604", "36415", "36416", "E11.22"], date(2024, 12, 31)).to_dict()
    _same_as_other_backend("check", result)
