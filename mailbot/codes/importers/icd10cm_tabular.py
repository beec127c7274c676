"""Parse the CMS ICD-10-CM tabular XML into code rows.

Keeps everything a coder needs from the tabular list: descriptor, billable
vs header, inclusion terms, Includes, Excludes1/Excludes2, Code First / Use
Additional Code / Code Also, general notes and 7th-character definitions.
Codes that need a 7th character are expanded into the billable codes
(``S52.521`` + ``A`` -> ``S52.521A``; short codes padded with the ``X``
placeholder, ``S02.0`` -> ``S02.0XXA``); the 6-character stem becomes a header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from mailbot.codes.importers.base import CodeImportError

# XML element -> key in CodeEntry.notes
NOTE_KINDS = {
    "inclusionTerm": "inclusion_terms",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional",
    "codeAlso": "code_also",
    "notes": "notes",
    "sevenChrNote": "seventh_note",
}


@dataclass
class TabularCode:
    code: str
    title: str
    billable: bool
    parent: str
    notes: dict


def read_code_list(path: Path) -> set[str] | None:
    """Undotted codes of the CMS code list next to the tabular (None if absent)."""
    if not path.exists():
        return None
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def tabular_version(path: Path) -> str:
    """The ``<version>`` of a tabular file (``2026``)."""
    for _event, elem in etree.iterparse(str(path), events=("end",), tag="version"):
        return (elem.text or "").strip()
    return ""


def parse_tabular(path: Path, code_list: set[str] | None = None) -> Iterator[TabularCode]:
    """Every code and header of the tabular list, in tabular order.

    ``code_list`` (undotted codes of the CMS order/code list shipped with the
    tabular) drops derived 7th-character codes the tabular forbids in prose
    (e.g. S06.x7/S06.x8 only take ``A``)."""
    try:
        tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise CodeImportError(f"{path}: not a well-formed ICD-10-CM tabular XML file ({exc})") from None
    root = tree.getroot()
    if root.tag != "ICD10CM.tabular":
        raise CodeImportError(f"{path}: not an ICD-10-CM tabular file (root element <{root.tag}>)")
    chapters = root.findall("chapter")
    if not chapters:
        raise CodeImportError(f"{path}: ICD-10-CM tabular file has no chapters (truncated?)")
    for chapter in chapters:
        for section in chapter.iterfind("section"):
            for diag in section.iterfind("diag"):
                yield from _walk(diag, parent="", seventh=None, code_list=code_list)


def _notes(elem) -> dict:
    notes: dict[str, object] = {}
    for child in elem:
        key = NOTE_KINDS.get(child.tag)
        if key:
            texts = [" ".join((n.text or "").split()) for n in child.iterfind("note")]
            texts = [t for t in texts if t]
            if texts:
                notes.setdefault(key, []).extend(texts)
    return notes


def _seventh(elem) -> dict[str, str] | None:
    block = elem.find("sevenChrDef")
    if block is None:
        return None
    return {ext.get("char"): " ".join((ext.text or "").split()) for ext in block.iterfind("extension")}


def _walk(diag, parent: str, seventh: dict[str, str] | None, code_list: set[str] | None) -> Iterator[TabularCode]:
    name = (diag.findtext("name") or "").strip()
    title = " ".join((diag.findtext("desc") or "").split())
    if not name or not title:
        raise CodeImportError(f"ICD-10-CM tabular: a <diag> without name or desc near line {diag.sourceline}")
    notes = _notes(diag)
    own_seventh = _seventh(diag)
    if own_seventh:
        notes["seventh_characters"] = own_seventh
        seventh = own_seventh
    children = diag.findall("diag")
    needs_seventh = not children and seventh is not None
    yield TabularCode(name, title, billable=not children and not needs_seventh, parent=parent, notes=notes)
    for child in children:
        yield from _walk(child, parent=name, seventh=seventh, code_list=code_list)
    if needs_seventh:
        stem = name.replace(".", "").ljust(6, "X")
        for char, meaning in seventh.items():
            if code_list is not None and stem + char not in code_list:
                continue
            code = f"{stem[:3]}.{stem[3:]}{char}"
            yield TabularCode(code, f"{title}, {meaning}", billable=True, parent=name,
                              notes={"seventh_character": {"char": char, "meaning": meaning}})
