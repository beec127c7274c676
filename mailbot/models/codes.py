"""Code knowledge base tables: imported reference data.

Every table here is marked ``info={"reference": True}``: it holds what the
official files say, is rewritten only by the importers, and the tests keep it
between cases.  Rows point at the :class:`CodeSetVersion` they came from, so
every fact can cite its source.

ICD-10-CM validity is stored as a date interval per row (``valid_from`` ..
``valid_to`` inclusive; ``None`` = open): a code unchanged between FY2026 and
FY2027 is one row, a revised title or billable change closes the old row on
2026-09-30 and opens a new one on 2026-10-01.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailbot.models.base import json_field, utcnow

REFERENCE = {"reference": True}


class CodeSetVersion(SQLModel, table=True):
    """One imported release of one code set (or operator file)."""

    __tablename__ = "code_set_version"
    __table_args__ = (UniqueConstraint("kind", "version", "setting", name="uq_code_set_version"), {"info": REFERENCE})

    id: int | None = Field(default=None, primary_key=True)
    # icd10cm, hcpcs, pfs, ncci, mue, cpt
    kind: str = Field(max_length=16, index=True)
    version: str = Field(max_length=64)
    # practitioner / hospital for NCCI and MUE; "" otherwise
    setting: str = Field(default="", max_length=16)
    source: str = Field(max_length=500)
    effective_from: date | None = None
    effective_to: date | None = None
    row_count: int = 0
    counts: dict[str, Any] = json_field(default_factory=dict)
    checksum: str = Field(max_length=64)
    imported_at: datetime = Field(default_factory=utcnow)


class CodeEntry(SQLModel, table=True):
    """A code (or header) of ICD-10-CM, HCPCS Level II, licensed CPT, or a modifier."""

    __tablename__ = "code_entry"
    __table_args__ = (
        UniqueConstraint("system", "code", "valid_from", name="uq_code_entry"),
        Index("ix_code_entry_lookup", "system", "code"),
        Index("ix_code_entry_parent", "system", "parent"),  # children on every lookup card
        {"info": REFERENCE},
    )

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=10)  # icd10cm, hcpcs, cpt, modifier
    code: str = Field(max_length=10)  # canonical: ICD-10-CM dotted, others upper case
    title: str = Field(default="", sa_type=Text)  # some HCPCS descriptors run past 2,000 characters
    short_title: str = Field(default="", max_length=200)
    billable: bool = False
    parent: str = Field(default="", max_length=10)
    valid_from: date
    valid_to: date | None = None  # inclusive last day; None = still valid
    version_id: int = Field(foreign_key="code_set_version.id", index=True)
    # inclusion terms, excludes1/2, code first, use additional, code also,
    # 7th characters (ICD-10-CM); dates, action, pricing (HCPCS)
    notes: dict[str, Any] = json_field(default_factory=dict)


class RvuEntry(SQLModel, table=True):
    """A Physician Fee Schedule RVU row (CPT and HCPCS alike)."""

    __tablename__ = "rvu_entry"
    __table_args__ = (
        UniqueConstraint("code", "modifier", "version_id", name="uq_rvu_entry"),
        {"info": REFERENCE},
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=10, index=True)
    modifier: str = Field(default="", max_length=4)
    description: str = Field(default="", max_length=200)
    status: str = Field(default="", max_length=2)
    global_days: str = Field(default="", max_length=4)
    work_rvu: float = 0.0
    nonfacility_pe_rvu: float = 0.0
    facility_pe_rvu: float = 0.0
    mp_rvu: float = 0.0
    nonfacility_total: float = 0.0
    facility_total: float = 0.0
    conversion_factor: float = 0.0
    # PCTC, MULT PROC, BILAT SURG, ASST SURG, CO-SURG, TEAM SURG, ... as printed
    indicators: dict[str, Any] = json_field(default_factory=dict)
    version_id: int = Field(foreign_key="code_set_version.id", index=True)


class NcciEdit(SQLModel, table=True):
    """An NCCI procedure-to-procedure edit (column 1 / column 2 pair)."""

    __tablename__ = "ncci_edit"
    __table_args__ = (
        Index("ix_ncci_pair", "setting", "column1", "column2"),
        Index("ix_ncci_column2", "column2"),
        {"info": REFERENCE},
    )

    id: int | None = Field(default=None, primary_key=True)
    setting: str = Field(max_length=16)  # practitioner / hospital
    column1: str = Field(max_length=10)
    column2: str = Field(max_length=10)
    prior_1996: bool = False
    effective: date
    deleted: date | None = None  # exclusive: the edit no longer applies on this date
    modifier_indicator: str = Field(max_length=1)  # 0, 1, 9
    rationale: str = Field(default="", max_length=300)
    version_id: int = Field(foreign_key="code_set_version.id", index=True)


class MueLimit(SQLModel, table=True):
    """A Medically Unlikely Edit: the most units of a code per day/line."""

    __tablename__ = "mue_limit"
    __table_args__ = (
        UniqueConstraint("setting", "code", "version_id", name="uq_mue_limit"),
        {"info": REFERENCE},
    )

    id: int | None = Field(default=None, primary_key=True)
    setting: str = Field(max_length=16)
    code: str = Field(max_length=10, index=True)
    value: int
    adjudication: str = Field(default="", max_length=200)
    rationale: str = Field(default="", max_length=300)
    version_id: int = Field(foreign_key="code_set_version.id", index=True)


class CodeFlag(SQLModel, table=True):
    """A dated flag on a code from an edit or grouping table (one fact per row).

    ICD-10-CM (``system`` icd10cm): ``age_range`` ("9-64"), ``sex``,
    ``manifestation``, ``code_first``, ``unacceptable_pdx`` (I/OCE edit
    flags), ``cc_level`` (CC / MCC, MS-DRG), ``hcc`` ("37|label", CMS-HCC
    V28).  Procedures (``system`` proc, CPT and HCPCS alike): ``addon_primary``
    (value = a primary code; one row per pair) and ``addon`` (value = the
    add-on type, for add-on codes with no primary list)."""

    __tablename__ = "code_flag"
    __table_args__ = (
        Index("ix_code_flag_lookup", "system", "code", "flag"),
        {"info": REFERENCE},
    )

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=10)
    code: str = Field(max_length=10)
    flag: str = Field(max_length=24)
    value: str = Field(default="", max_length=200)
    valid_from: date
    valid_to: date | None = None  # inclusive; None = open
    version_id: int = Field(foreign_key="code_set_version.id", index=True)
