"""Import the ICD-10-CM Alphabetic Index, Table of Drugs and Chemicals and Neoplasm Table.

The CMS yearly code-tables zip holds them as XML (no package ships them, so
this is an operator import)::

    <ICD10CM.index>
      <indexHeading><head col="1">Substance</head><head col="2">Poisoning, Accidental ...</head>...</indexHeading>
      <letter><title>F</title>
        <mainTerm><title>Fracture<nemod>(abduction)</nemod></title><see>...</see>
          <term level="1"><title>radius</title>
            <term level="2"><title>distal end</title><code>S52.50-</code></term>

Index files have ``code`` / ``see`` / ``seeAlso``; the drug and neoplasm
tables have ``cell[@col]`` instead (column 1 repeats the term).  Each line
becomes one :class:`IndexTerm` with its full path ("Fracture, radius, distal
end").  The three files are one code set, imported in ONE transaction; a file
in the wrong layout raises :class:`CodeImportError` naming the file and line
and nothing is written.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from sqlmodel import Session

from mailbot.codes.importers.base import (
    CodeImportError,
    ImportResult,
    Progress,
    add_version,
    already_imported,
    bulk_insert,
    drop_kind,
    sha256_of,
)
from mailbot.models.code_index import IndexTerm

KIND = "icd10cm_index"
FILE_KINDS = (("_drug", "drug"), ("_neoplasm", "neoplasm"), ("_index", "index"))
_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{0,4})?-?$")
_DASH = re.compile(r"^[-\u2013\u2014]+$")


def kind_of(path: Path) -> str:
    """``index``, ``drug`` or ``neoplasm`` from the CMS file name."""
    name = path.name.lower()
    for marker, kind in FILE_KINDS:
        if marker in name:
            return kind
    raise CodeImportError(f"{path}: not a CMS index file name (expected icd10cm_index_YYYY.xml, "
                          "icd10cm_drug_YYYY.xml or icd10cm_neoplasm_YYYY.xml)")


def _text(element: ET.Element | None) -> str:
    """All text of an element, non-essential modifiers in parentheses as printed."""
    if element is None:
        return ""
    parts = [element.text or ""]
    for child in element:
        inner = " ".join("".join(child.itertext()).split())
        parts.append(f" ({inner.strip('()')})" if child.tag == "nemod" and inner else inner)
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _line_of(path: Path, needle: str) -> int:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if needle in line:
                return number
    return 0


def parse_file(path: Path) -> list[dict]:
    """The rows of one file; raises :class:`CodeImportError` naming the file and line."""
    kind = kind_of(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else 0
        raise CodeImportError(f"{path}: line {line}: not well-formed XML ({exc})") from None
    except OSError as exc:
        raise CodeImportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if root.tag != "ICD10CM.index":
        raise CodeImportError(f"{path}: line 1: root element is <{root.tag}>, expected <ICD10CM.index>")
    heads = {h.get("col", ""): _text(h) for h in root.iter("head")}
    letters = root.findall("letter")
    if not letters:
        raise CodeImportError(f"{path}: no <letter> elements: not an ICD-10-CM index file (truncated?)")
    rows: list[dict] = []

    def visit(term: ET.Element, trail: list[str]) -> None:
        title = _text(term.find("title"))
        if not title:
            snippet = ET.tostring(term, encoding="unicode")[:60].split(">")[0]
            raise CodeImportError(f"{path}: line {_line_of(path, snippet) or '?'}: a <{term.tag}> without a <title>")
        here = [*trail, title]
        text_path = ", ".join(here)
        code = _text(term.find("code")).upper()
        if code and not _CODE.match(code):
            raise CodeImportError(f"{path}: line {_line_of(path, code) or '?'}: {code!r} under {text_path!r} "
                                  "is not an ICD-10-CM code")
        see, see_also = _text(term.find("see")), _text(term.find("seeAlso"))
        if code or see or see_also:
            rows.append({"kind": kind, "path": text_path, "code": code, "column": "", "see": see,
                         "see_also": see_also})
        for cell in term.findall("cell"):
            col = cell.get("col", "")
            value = _text(cell).upper()
            if col == "1" or not value or _DASH.match(value):
                continue  # column 1 repeats the term; "--" is an empty cell
            if not _CODE.match(value):
                raise CodeImportError(f"{path}: line {_line_of(path, _text(cell)) or '?'}: cell {col} of "
                                      f"{text_path!r} holds {value!r}, not an ICD-10-CM code")
            rows.append({"kind": kind, "path": text_path, "code": value, "column": heads.get(col, f"column {col}")[:80],
                         "see": "", "see_also": ""})
        for child in term.findall("term"):
            visit(child, here)

    for letter in letters:
        for main in letter.findall("mainTerm"):
            visit(main, [])
    if not rows:
        raise CodeImportError(f"{path}: no index lines with a code, see or see also (truncated?)")
    return rows


def import_index(session: Session, paths: list[Path], progress: Progress | None = None) -> ImportResult:
    """Import the given index / drug / neoplasm files as one version (one transaction: the caller's)."""
    if not paths:
        raise CodeImportError("no ICD-10-CM index files given")
    paths = sorted(paths)
    checksum = sha256_of(*paths)
    years = sorted({m.group(0) for p in paths for m in [re.search(r"20\d\d", p.name)] if m})
    version = "FY" + "/".join(years) if years else paths[0].stem
    if already_imported(session, KIND, checksum):
        return ImportResult(KIND, version, source=", ".join(p.name for p in paths), skipped=True)
    rows: list[dict] = []
    counts: dict[str, int] = {}
    for path in paths:
        parsed = parse_file(path)
        counts[kind_of(path)] = counts.get(kind_of(path), 0) + len(parsed)
        rows.extend(parsed)
    drop_kind(session, KIND, [IndexTerm])
    vid = add_version(session, kind=KIND, version=version, source="CMS ICD-10-CM index XML: " +
                      ", ".join(p.name for p in paths), row_count=len(rows), checksum=checksum, counts=counts)
    bulk_insert(session, IndexTerm, [{**r, "version_id": vid} for r in rows], progress, "ICD-10-CM index", len(rows))
    return ImportResult(KIND, version, source=", ".join(str(p) for p in paths), rows=len(rows), counts=counts)
