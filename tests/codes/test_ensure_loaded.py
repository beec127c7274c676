"""`serve` calls ensure_loaded: a no-op when the sets are there, a clear error when files are missing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailbot.codes.importers import CodeImportError, ensure_loaded
from mailbot.context import Context
from mailbot.models.codes import CodeSetVersion
from tests.conftest import make_settings


def test_is_a_no_op_when_everything_is_loaded(codes_db, db, tmp_path):
    ctx = Context(make_settings(tmp_path, db), db=db)
    with db.read() as s:
        before = [(v.id, v.checksum) for v in s.execute(select(CodeSetVersion)).scalars()]
    ensure_loaded(ctx)
    with db.read() as s:
        assert [(v.id, v.checksum) for v in s.execute(select(CodeSetVersion)).scalars()] == before


def test_missing_shipped_files_name_the_setting(fresh_db, tmp_path):
    ctx = Context(make_settings(tmp_path, fresh_db, **{"codes.data_dir": str(tmp_path / "nowhere")}), db=fresh_db)
    with pytest.raises(CodeImportError, match="set codes.data_dir"):
        ensure_loaded(ctx)


def test_a_bad_ncci_dir_is_named(fresh_db, tmp_path):
    ctx = Context(make_settings(tmp_path, fresh_db, **{"codes.ncci_dir": str(tmp_path / "missing")}), db=fresh_db)
    with pytest.raises(CodeImportError, match="codes.ncci_dir"):
        ensure_loaded(ctx)


def test_an_install_from_before_the_history_gets_it_on_the_next_start(fresh_db, tmp_path):
    """Installed when only FY2026/FY2027 shipped; the next `serve` re-imports ICD-10-CM with its history."""
    from datetime import date

    from mailbot.codes.history import status_on
    from mailbot.codes.knowledge import load
    from tests.codes.conftest import REPO

    shipped = REPO / "data" / "codesets"
    data_dir = tmp_path / "codesets"
    data_dir.mkdir()
    for name in ("hcpcs", "pfs", "icd10cm-fy2027", "pyoce", "dxgroups"):  # every shipped set but the history
        (data_dir / name).symlink_to(shipped / name)
    ctx = Context(make_settings(tmp_path, fresh_db, **{"codes.data_dir": str(data_dir)}), db=fresh_db)
    ensure_loaded(ctx)
    with fresh_db.read() as s:
        assert "FY2016" not in {v.version for v in s.execute(select(CodeSetVersion)).scalars()}
    (data_dir / "icd10cm-history").symlink_to(shipped / "icd10cm-history")
    ensure_loaded(ctx)
    with fresh_db.read() as s:
        versions = [v.version for v in s.execute(select(CodeSetVersion).where(CodeSetVersion.kind == "icd10cm"))
                    .scalars()]
        knowledge = load(s)
    assert "FY2016" in versions and versions.count("FY2027") == 1
    assert status_on(knowledge, "icd10cm", "M54.5", date(2021, 6, 1)).version == "ICD-10-CM FY2021"
    ensure_loaded(ctx)  # and then it is a no-op again
