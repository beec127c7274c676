"""Command tests need the imported code sets.

The shared ``codes_db`` fixture (tests/conftest.py, from the code knowledge
base work) imports them once per backend; until it exists, this defines the
same fixture so these tests run on their own.
"""

from __future__ import annotations

import pytest

import tests.conftest as shared

if not hasattr(shared, "codes_db"):

    @pytest.fixture(scope="session")
    def codes_db(session_db, tmp_path_factory):
        from mailbot.codes.importers import ensure_loaded
        from mailbot.context import Context

        ensure_loaded(Context(shared.make_settings(tmp_path_factory.mktemp("codes"), session_db), db=session_db))
        return session_db
