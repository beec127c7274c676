"""The ICD-10-CM Alphabetic Index, Table of Drugs and Chemicals and Neoplasm Table.

An operator import of the CMS XML files (``icd10cm_index_YYYY.xml``,
``icd10cm_drug_YYYY.xml``, ``icd10cm_neoplasm_YYYY.xml``): one row per index
line that names a code, a "see" or a "see also", with its full path
("Fracture, radius, distal end").  A table row (drug, neoplasm) has one row
per filled cell, naming its column ("Poisoning, Accidental (unintentional)").
Reference data like :mod:`mailbot.models.codes`.
"""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

REFERENCE = {"reference": True}


class IndexTerm(SQLModel, table=True):
    """One line of the Alphabetic Index (or one cell of the drug / neoplasm table)."""

    __tablename__ = "icd10cm_index_term"
    __table_args__ = ({"info": REFERENCE},)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # index, drug, neoplasm
    path: str = Field(sa_type=Text)  # "Fracture, radius, distal end"
    code: str = Field(default="", max_length=10, index=True)  # as printed: "S52.50-", "T51.8X1", "" (see only)
    column: str = Field(default="", max_length=80)  # table column heading, "" for the index
    see: str = Field(default="", sa_type=Text)
    see_also: str = Field(default="", sa_type=Text)
    version_id: int = Field(foreign_key="code_set_version.id", index=True)
