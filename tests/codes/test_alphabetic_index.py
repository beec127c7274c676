"""The ICD-10-CM Alphabetic Index, drug and neoplasm tables: import, search, index paths.

Tested on small synthetic files written in the CMS schema
(``ICD10CM.index/letter/mainTerm/title|code|see|seeAlso|term[@level]``; tables
with ``cell[@col]``), beside the synthetic tabular of tests/codes/conftest.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mailbot.codes.alphabetic import index_paths
from mailbot.codes.importers import CodeImportError, import_sets
from mailbot.codes.importers.icd10cm import import_icd10cm
from mailbot.codes.index import invalidate
from mailbot.codes.search import search
from mailbot.models.code_index import IndexTerm
from mailbot.models.codes import CodeSetVersion

INDEX = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2026</version>
  <title>ICD-10-CM INDEX TO DISEASES and INJURIES</title>
  <letter><title>B</title>
    <mainTerm><title>Buckle fracture</title><see>Fracture, by site, torus</see></mainTerm>
  </letter>
  <letter><title>D</title>
    <mainTerm><title>Diabetes, diabetic<nemod>(mellitus) (sugar)</nemod></title><code>E11.9</code>
      <term level="1"><title>with</title>
        <term level="2"><title>chronic kidney disease</title><code>E11.22</code></term>
      </term>
    </mainTerm>
  </letter>
  <letter><title>F</title>
    <mainTerm><title>Fracture, traumatic</title><seeAlso>Injury</seeAlso>
      <term level="1"><title>radius</title>
        <term level="2"><title>distal end</title><code>S52.5-</code>
          <term level="3"><title>buckle</title><code>S52.52-</code></term>
          <term level="3"><title>torus</title><code>S52.52-</code></term>
        </term>
      </term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""

DRUG = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2026</version>
  <indexHeading><head col="1">Substance</head><head col="2">Poisoning, Accidental (unintentional)</head>
    <head col="3">Poisoning, Intentional self-harm</head><head col="4">Adverse effect</head></indexHeading>
  <letter><title>A</title>
    <mainTerm><title>Aspirin</title><cell col="1">Aspirin</cell><cell col="2">T39.011</cell>
      <cell col="3">T39.012</cell><cell col="4">--</cell></mainTerm>
  </letter>
</ICD10CM.index>
"""

NEOPLASM = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.index>
  <version>2026</version>
  <indexHeading><head col="1">Neoplasm, neoplastic</head><head col="2">Malignant Primary</head>
    <head col="3">Malignant Secondary</head></indexHeading>
  <letter><title>N</title>
    <mainTerm><title>Neoplasm, neoplastic</title>
      <term level="1"><title>breast</title><cell col="1">breast</cell><cell col="2">C50.91-</cell>
        <cell col="3">C79.81</cell></term>
    </mainTerm>
  </letter>
</ICD10CM.index>
"""


@pytest.fixture
def index_files(tmp_path):
    files = []
    for name, body in (("icd10cm_index_2026.xml", INDEX), ("icd10cm_drug_2026.xml", DRUG),
                       ("icd10cm_neoplasm_2026.xml", NEOPLASM)):
        path = tmp_path / name
        path.write_text(body, encoding="utf-8")
        files.append(path)
    return files


@pytest.fixture
def tabular_db(fresh_db, tabular):
    with fresh_db.session() as s:
        import_icd10cm(s, tabular, None)
    invalidate()
    yield fresh_db
    invalidate()


def terms(db) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(IndexTerm)).scalar_one()


def test_import_keeps_every_line_with_its_full_path(tabular_db, index_files):
    [result] = import_sets(tabular_db, index=index_files)
    assert result.kind == "icd10cm_index" and result.version == "FY2026"
    assert result.counts == {"drug": 2, "index": 7, "neoplasm": 2}
    with tabular_db.read() as s:
        rows = {(r.kind, r.path, r.code, r.column, r.see, r.see_also) for r in s.execute(select(IndexTerm)).scalars()}
    assert ("index", "Fracture, traumatic, radius, distal end", "S52.5-", "", "", "") in rows
    assert ("index", "Buckle fracture", "", "", "Fracture, by site, torus", "") in rows
    assert ("index", "Diabetes, diabetic (mellitus) (sugar), with, chronic kidney disease", "E11.22", "", "", "") in rows
    assert ("drug", "Aspirin", "T39.012", "Poisoning, Intentional self-harm", "", "") in rows
    assert ("neoplasm", "Neoplasm, neoplastic, breast", "C50.91-", "Malignant Primary", "", "") in rows
    # importing the same files again changes nothing
    assert import_sets(tabular_db, index=index_files)[0].skipped


def test_index_paths_for_the_drafter(tabular_db, index_files):
    import_sets(tabular_db, index=index_files)
    with tabular_db.read() as s:
        paths = index_paths(s, "S52.521A")
        # the most specific entries first (S52.52- before S52.5-)
        assert set(paths[:2]) == {"Index: Fracture, traumatic, radius, distal end, buckle -> S52.52-",
                                  "Index: Fracture, traumatic, radius, distal end, torus -> S52.52-"}
        assert "Index: Fracture, traumatic, radius, distal end -> S52.5-" in paths
        assert index_paths(s, "T39.011") == ["Table of Drugs and Chemicals: Aspirin, Poisoning, Accidental "
                                             "(unintentional) -> T39.011"]
        assert index_paths(s, "C50.911") == ["Neoplasm Table: Neoplasm, neoplastic, breast, Malignant Primary "
                                             "-> C50.91-"]
        assert index_paths(s, "E11.29") == []


def test_search_uses_index_terms_once_imported(tabular_db, index_files):
    with tabular_db.read() as s:
        before = [h.code for h in search(s, "buckle")]
    assert "S52.521A" not in before[:1]  # "buckle" is no word of the tabular
    import_sets(tabular_db, index=index_files)
    with tabular_db.read() as s:
        assert [h.code for h in search(s, "buckle", limit=1)] == ["S52.521A"]


@pytest.mark.parametrize("name, body, message", [
    ("icd10cm_index_2026.xml", "<ICD10CM.tabular><letter/></ICD10CM.tabular>", "line 1: root element"),
    ("icd10cm_index_2026.xml", "<ICD10CM.index>\n<letter><title>A</title>\n<mainTerm><code>A00.9</code></mainTerm>"
                               "\n</letter></ICD10CM.index>", "line 3: a <mainTerm> without a <title>"),
    ("icd10cm_drug_2026.xml", "<ICD10CM.index>\n<letter><title>A</title><mainTerm><title>Aspirin</title>\n"
                              "<cell col=\"2\">aspirin!</cell></mainTerm></letter></ICD10CM.index>",
     "line 3: cell 2 of 'Aspirin' holds 'ASPIRIN!'"),
    ("icd10cm_index_2026.xml", "<ICD10CM.index>\n<letter>\n<mainTerm><title>A</title>", "line 3: not well-formed"),
    ("index.xml", INDEX, "not a CMS index file name"),
])
def test_a_file_in_the_wrong_layout_names_file_and_line_and_changes_nothing(tabular_db, index_files, tmp_path,
                                                                            name, body, message):
    import_sets(tabular_db, index=index_files)
    before = terms(tabular_db)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = bad_dir / name
    bad.write_text(body, encoding="utf-8")
    with pytest.raises(CodeImportError) as err:
        # a good file beside the bad one is not imported either: the three files are one set
        import_sets(tabular_db, index=[index_files[1], bad])
    assert str(bad) in str(err.value) and message in str(err.value)
    assert terms(tabular_db) == before  # the earlier import is intact
    with tabular_db.read() as s:
        assert s.execute(select(func.count()).select_from(CodeSetVersion)
                         .where(CodeSetVersion.kind == "icd10cm_index")).scalar_one() == 1
