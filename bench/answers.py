"""Answer-engine benchmark: coder questions with answer keys, scored on the offline engine.

    PYTHONPATH=. .venv/bin/python bench/answers.py            # run, print the table
    PYTHONPATH=. .venv/bin/python bench/answers.py --keys     # only check the answer keys against the data
    PYTHONPATH=. .venv/bin/python bench/answers.py --show d01 # one question's answer

The set (``bench/answers_questions.csv``) was written before the engine, in
coders' words, from the code sets, the coding guidelines and how coders ask.
Each key lists tokens: a code (``E11.22``), a code with units (``J1010x40``),
a modifier (``mod:25``) or a phrase the answer must state (``says:090``).
A question passes when every expected code, unit and modifier appears as
*recommended* (and every phrase is said) and nothing recommended is invalid
or a header on the date of service.

Hold-out: questions whose SHA-1 of the id ends in a hex digit 0-3 (a quarter,
fixed by the hash) are never looked at while tuning; reported separately.
Questions whose key needs data other engineers ship (ICD-10-CM history, the
NCCI hospital table) are marked in the ``needs`` column and reported apart,
not dropped.  The code sets are the shipped ones only (no test NCCI files),
imported into a scratch SQLite database.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "bench" / "answers_questions.csv"
RESULTS = REPO / "bench" / "results" / "answers.json"
MESSAGE_DATE = date(2026, 11, 16)   # the Date header every bench question is sent with


def holdout(qid: str) -> bool:
    return hashlib.sha1(qid.encode()).hexdigest()[-1] in "0123"


def load() -> list[dict[str, str]]:
    with QUESTIONS.open(newline="") as fh:
        return list(csv.DictReader(fh))


def database(path: Path):
    from mailbot.codes.importers import import_sets
    from mailbot.db import Database

    db = Database(f"sqlite:///{path}")
    db.upgrade()
    import_sets(db, source=REPO / "data" / "codesets")
    return db


def parse_key(expect: str) -> dict[str, list]:
    key: dict[str, list] = {"codes": [], "units": [], "modifiers": [], "says": []}
    for token in expect.split():
        if token.startswith("mod:"):
            key["modifiers"].append(token[4:])
        elif token.startswith("says:"):
            key["says"].append(token[5:].lower())
        elif "x" in token[1:] and token.rsplit("x", 1)[1].isdigit() and not token[0].isdigit() or \
                token[0].isdigit() and "x" in token:
            code, units = token.rsplit("x", 1)
            key["units"].append((code, int(units)))
        else:
            key["codes"].append(token)
    return key


def check_keys(db, rows: list[dict[str, str]]) -> list[str]:
    """Every expected code exists, is valid and billable on the question's date (shipped data)."""
    from mailbot.answers.facts import extract
    from mailbot.answers.kb import KB

    problems = []
    with db.read() as session:
        for row in rows:
            if row["needs"]:
                continue
            facts = extract(row["question"], message_date=MESSAGE_DATE)
            kb = KB(session, facts.date_of_service or MESSAGE_DATE)
            key = parse_key(row["expect"])
            for code in key["codes"] + [c for c, _ in key["units"]]:
                if not kb.reportable(code):
                    problems.append(f"{row['id']}: {code} is {kb.card(code).get('status')} on {kb.on}")
    return problems


def score(result, key: dict[str, list], kb) -> tuple[bool, list[str]]:
    from mailbot.answers.compose import render

    misses = []
    recommended = result.recommended
    codes = {line.code for line in recommended}
    for code in key["codes"]:
        if code not in codes:
            misses.append(f"missing {code}")
    for code, units in key["units"]:
        if not any(line.code == code and line.units == units for line in recommended):
            got = [line.billed for line in recommended if line.code == code]
            misses.append(f"missing {code} x {units}" + (f" (got {', '.join(got)})" if got else ""))
    modifiers = set(result.modifiers)
    for mod in key["modifiers"]:
        if mod not in modifiers:
            misses.append(f"missing modifier {mod}")
    text = render(result).lower()
    for phrase in key["says"]:
        if phrase not in text:
            misses.append(f"does not say {phrase!r}")
    for line in recommended:
        if not kb.reportable(line.code):
            misses.append(f"recommends invalid {line.code}")
    return not misses, misses


def run(rows: list[dict[str, str]], db, show: str = "") -> dict:
    from mailbot.answers import answer
    from mailbot.answers.compose import render
    from mailbot.answers.kb import KB

    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failures = []
    with db.read() as session:
        for row in rows:
            result = answer(session, row["question"], message_date=MESSAGE_DATE)
            kb = KB(session, result.date_of_service)
            ok, misses = score(result, parse_key(row["expect"]), kb)
            part = "needs " + row["needs"] if row["needs"] else ("hold-out" if holdout(row["id"]) else "tuning")
            for group in (f"intent {row['intent']}" if not row["needs"] else None, part, "all"):
                if group:
                    per[group][0] += ok
                    per[group][1] += 1
            if not ok:
                failures.append({"id": row["id"], "part": part, "misses": misses,
                                 "recommended": [line.billed for line in result.recommended]})
            if show and row["id"] == show:
                print(render(result))
                print(json.dumps(result.intents, indent=1))
    return {"groups": {k: {"passed": v[0], "total": v[1], "rate": round(v[0] / v[1], 3)} for k, v in
                       sorted(per.items())}, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", action="store_true", help="only check the answer keys against the data")
    parser.add_argument("--show", default="", help="print the draft of one question id")
    parser.add_argument("--db", default="", help="reuse this SQLite file (imported if empty)")
    parser.add_argument("--failures", action="store_true", help="list the tuning-part failures")
    args = parser.parse_args()
    rows = load()
    with tempfile.TemporaryDirectory() as tmp:
        db = database(Path(args.db) if args.db else Path(tmp) / "answers.db")
        problems = check_keys(db, rows)
        print(f"{len(rows)} questions, {sum(holdout(r['id']) for r in rows)} in the hold-out, "
              f"{sum(bool(r['needs']) for r in rows)} needing other engineers' data; key problems: {len(problems)}")
        for problem in problems:
            print("  key:", problem)
        if args.keys:
            return 1 if problems else 0
        report = run(rows, db, args.show)
        db.dispose()
    print(f"{'group':<28}{'passed':>8}{'total':>7}{'rate':>8}")
    for group, v in report["groups"].items():
        print(f"{group:<28}{v['passed']:>8}{v['total']:>7}{v['rate']:>8.1%}")
    if args.failures:
        for failure in report["failures"]:
            if failure["part"] == "tuning":
                print(f"  {failure['id']}: {'; '.join(failure['misses'])}  [got: {', '.join(failure['recommended'])}]")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"key_problems": problems, **{k: v for k, v in report.items()
                                                                 if k == "groups"},
                                   "holdout_failures": [f for f in report["failures"] if f["part"] == "hold-out"]},
                                  indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
