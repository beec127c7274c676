"""HCPCS Level II quarterly updates after the January file, from the I/OCE (pyoce).

``data/codesets/pyoce/hcpcs-level2.csv.gz`` (from ``scripts/derive_pyoce.py``)
lists every Level II code of the I/OCE quarters (July 2019 .. April 2026)
with the first and last day of the quarters it appears in and its newest
short descriptor.  Merged onto the January 2025 file:

- a code the January file does not have becomes a new row, valid from the
  first day of its first quarter (A2040: 2026-04-01), titled with its short
  descriptor -- the only one published in the shipped data -- and
  ``notes["descriptor_source"]`` says so;
- a January code that the I/OCE stops listing gets its termination date
  (its ``date_terminated`` when given, else the last day of its last quarter);
- every January code keeps its long descriptor, and ``descriptor_source``
  says that is what is shown.

Codes absent from the I/OCE are left as the January file has them (the I/OCE
omits a few codes Medicare never processes), so absence never terminates.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from mailbot.codes.importers.base import CodeImportError
from mailbot.codes.importers.derived_csv import iso_date, read_rows

HEADER = ["code", "valid_from", "valid_to", "date_terminated", "first_version", "last_version", "short_descriptor"]
LONG_SOURCE = "long descriptor, CMS HCPCS 2025 January file"


def merge(codes: list[dict[str, Any]], path: Path, label: str, first_quarter: date) -> tuple[list[dict], dict]:
    """Amend ``codes`` (January rows, in place); returns ``(new rows, counts)``."""
    short_source = (f"short descriptor from the I/OCE {label} (pyoce); the long descriptor is not in the "
                    "shipped data")
    by_code = {row["code"]: row for row in codes}
    for row in codes:
        row["notes"]["descriptor_source"] = LONG_SOURCE
    new: list[dict] = []
    terminated = 0
    for where, (code, start, end, term, first_version, _last, short) in read_rows(path, HEADER):
        valid_from = iso_date(start, where)
        valid_to = iso_date(term, where, optional=True) or iso_date(end, where, optional=True)
        if not code[:1].isalpha() or not code[1:].isdigit() or len(code) != 5:
            raise CodeImportError(f"{where}: {code!r} is not a HCPCS Level II code")
        known = by_code.get(code)
        if known is not None:
            if known["valid_to"] is None and valid_to is not None:
                known["valid_to"] = valid_to
                known["notes"]["terminated"] = valid_to.isoformat()
                known["notes"]["terminated_source"] = f"no longer in the I/OCE after {valid_to.isoformat()} ({label})"
                terminated += 1
            if short and short != known["short_title"]:
                known["notes"]["short_descriptor_latest"] = short
            continue
        notes = {"descriptor_source": short_source, "source": "pyoce"}
        if valid_from > first_quarter:
            notes["added"] = valid_from.isoformat()
        else:
            notes["in_ioce_since"] = f"listed since the first I/OCE quarter in the data ({valid_from.isoformat()})"
        if valid_to:
            notes["terminated"] = valid_to.isoformat()
        new.append({"system": "hcpcs", "code": code, "title": short, "short_title": short[:200], "billable": True,
                    "parent": "", "valid_from": valid_from, "valid_to": valid_to, "notes": notes})
    counts = {"new_codes": len(new), "terminated_since_january": terminated,
              "new_in_2026": sum(r["valid_from"].year == 2026 for r in new)}
    return new, counts
