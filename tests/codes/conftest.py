"""Small synthetic code-set files in the official layouts, for importer tests.

The full shipped sets are imported once per backend by the ``codes_db``
fixture (tests/conftest.py); importer edge cases use these tiny files on a
``fresh_db`` so a failing import can be checked without touching shared data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HCPCS_FILE = REPO / "data" / "codesets" / "hcpcs" / "HCPC2025_JAN_ANWEB_12172024.txt"
PFS_FILE = REPO / "data" / "codesets" / "pfs" / "mpfs_rvu_2025_redacted.csv"
NCCI_DIR = Path(__file__).resolve().parents[1] / "data" / "ncci"

TABULAR = """<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2026</version>
  <chapter><name>4</name><desc>Endocrine, nutritional and metabolic diseases (E00-E89)</desc>
    <section id="E08-E13"><desc>Diabetes mellitus (E08-E13)</desc>
      <diag><name>E11</name><desc>Type 2 diabetes mellitus</desc>
        <includes><note>diabetes NOS</note></includes>
        <useAdditionalCode><note>insulin (Z79.4)</note></useAdditionalCode>
        <excludes1><note>type 1 diabetes mellitus (E10.-)</note></excludes1>
        <diag><name>E11.2</name><desc>Type 2 diabetes mellitus with kidney complications</desc>
          <diag><name>E11.22</name><desc>Type 2 diabetes mellitus with diabetic chronic kidney disease</desc>
            <inclusionTerm><note>Synthetic inclusion term for testing</note></inclusionTerm>
            <useAdditionalCode><note>code to identify stage of chronic kidney disease (N18.1-N18.6)</note></useAdditionalCode>
          </diag>
          <diag><name>E11.29</name><desc>Type 2 diabetes mellitus with other diabetic kidney complication</desc></diag>
        </diag>
        <diag><name>E11.9</name><desc>Type 2 diabetes mellitus without complications</desc></diag>
      </diag>
    </section>
  </chapter>
  <chapter><name>19</name><desc>Injury, poisoning (S00-T88)</desc>
    <section id="S50-S59"><desc>Injuries to the elbow and forearm (S50-S59)</desc>
      <diag><name>S52</name><desc>Fracture of forearm</desc>
        <sevenChrDef>
          <extension char="A">initial encounter for closed fracture</extension>
          <extension char="D">subsequent encounter for closed fracture with routine healing</extension>
        </sevenChrDef>
        <diag><name>S52.5</name><desc>Fracture of lower end of radius</desc>
          <diag><name>S52.52</name><desc>Torus fracture of lower end of radius</desc>
            <diag><name>S52.521</name><desc>Torus fracture of lower end of right radius</desc></diag>
          </diag>
        </diag>
        <diag><name>S52.9</name><desc>Unspecified fracture of forearm</desc></diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""

ADDENDA = {
    "added.csv": "code,codeDotted,billable,category,shortTitle,longTitle\n"
                 "E1123,E11.23,true,E11,Type 2 DM w synthetic kidney thing,Type 2 diabetes mellitus with synthetic kidney thing\n",
    "deleted.csv": "code,codeDotted,wasBillable,category,shortTitle,longTitle\n"
                   "E1129,E11.29,true,E11,T2DM w oth diab kidney comp,Type 2 diabetes mellitus with other diabetic kidney complication\n",
    "revised.csv": "code,codeDotted,billable,previousLongTitle,newLongTitle,previousShortTitle,newShortTitle\n"
                   "E119,E11.9,true,Type 2 diabetes mellitus without complications,Type 2 diabetes mellitus without any complications,T2DM w/o comp,T2DM w/o any comp\n",
    "billable-status-changes.csv": "code,codeDotted,previousBillable,newBillable,direction,longTitle\n"
                                   "E1122,E11.22,true,false,billable-to-header,Type 2 diabetes mellitus with diabetic chronic kidney disease\n",
}


@pytest.fixture
def tabular(tmp_path) -> Path:
    path = tmp_path / "icd10cm-tabular-April-1-2026.xml"
    path.write_text(TABULAR, encoding="utf-8")
    return path


@pytest.fixture
def addenda(tmp_path) -> Path:
    folder = tmp_path / "icd10cm-fy2027"
    folder.mkdir()
    for name, text in ADDENDA.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def small_hcpcs(tmp_path) -> Path:
    """20 modifier records and 40 procedure records of the real CMS file (same layout, CRLF)."""
    every = [line for line in HCPCS_FILE.read_bytes().split(b"\r\n") if line]
    lines = [ln for ln in every if ln[10:11] in (b"7", b"8")][:20] + [ln for ln in every if ln[10:11] in (b"3", b"4")][:40]
    path = tmp_path / "HCPC2025_JAN_ANWEB_small.txt"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return path


@pytest.fixture
def small_pfs(tmp_path) -> Path:
    lines = PFS_FILE.read_bytes().split(b"\r\n")[:40]
    path = tmp_path / "mpfs_rvu_2025_small.csv"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return path


# A history consistent with TABULAR: E11.2 was billable until FY2019 (E11.22
# added FY2020 under it), E11.28 existed until FY2025 (E11.29 replaced it in
# FY2026), E11.9 had another title until FY2024.
HISTORY = {
    "added.csv": "fiscalYear,code,codeDotted,billable,category,shortTitle,longTitle\n"
                 "2020,E1122,E11.22,true,E11,T2DM w diab CKD,Type 2 diabetes mellitus with diabetic chronic kidney disease\n"
                 "2026,E1129,E11.29,true,E11,T2DM w oth diab kidney comp,Type 2 diabetes mellitus with other diabetic kidney complication\n",
    "deleted.csv": "fiscalYear,code,codeDotted,wasBillable,category,shortTitle,longTitle\n"
                   "2026,E1128,E11.28,true,E11,T2DM w synthetic old kidney,Type 2 diabetes mellitus with synthetic old kidney complication\n",
    "revised.csv": "fiscalYear,code,codeDotted,billable,previousLongTitle,newLongTitle,previousShortTitle,newShortTitle\n"
                   "2025,E119,E11.9,true,Type 2 diabetes mellitus without complication (old wording),"
                   "Type 2 diabetes mellitus without complications,T2DM old,T2DM w/o comp\n",
    "billable-status-changes.csv": "fiscalYear,code,codeDotted,previousBillable,newBillable,direction,longTitle\n"
                                   "2020,E112,E11.2,true,false,billable-to-header,Type 2 diabetes mellitus with kidney complications\n",
}


@pytest.fixture
def history(tmp_path) -> Path:
    folder = tmp_path / "icd10cm-history"
    folder.mkdir()
    for name, text in HISTORY.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
