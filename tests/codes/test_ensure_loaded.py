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
