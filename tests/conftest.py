"""Shared fixtures: real databases, real Redis, isolated settings.

Every test that uses ``db`` runs twice, on SQLite and on PostgreSQL (select
with ``MAILBOT_TEST_DATABASES=sqlite`` or ``=postgresql``).  Each backend gets
one database per test session, migrated once; after each test the rows of
every non-reference table are deleted, so tests stay independent while the
imported code sets (reference tables) are loaded only once.

Redis is shared with other users of the machine, so each session uses its own
dramatiq namespace instead of flushing a database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import mailbot.models  # noqa: F401  (registers every table)
from mailbot.config import Settings, load_settings
from mailbot.context import Context, configure
from mailbot.db import Database, reference_tables

# The suite's own knobs.  They are taken out of the environment here because
# every other MAILBOT_* variable is a setting, and settings refuse unknown keys
# (in this process and in the subprocesses the tests start).
_TEST_ENV = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("MAILBOT_TEST_")}
PG_ADMIN_URL = _TEST_ENV.get("MAILBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = _TEST_ENV.get("MAILBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = [b for b in _TEST_ENV.get("MAILBOT_TEST_DATABASES", "sqlite,postgresql").split(",") if b]
RUN_ID = uuid.uuid4().hex[:10]
TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = TESTS_DIR / "data"


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _create_pg_database(name: str) -> str:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _pg_url(name)


def _drop_pg_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_database(backend: str, directory: Path, label: str) -> tuple[Database, callable]:
    """A fresh, migrated database; returns it and a cleanup function."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{directory / (label + '.db')}")
        database.upgrade()
        return database, database.dispose
    name = f"mailbot_{RUN_ID}_{label}".lower()
    database = Database(_create_pg_database(name))
    database.upgrade()

    def cleanup() -> None:
        database.dispose()
        _drop_pg_database(name)

    return database, cleanup


@pytest.fixture(scope="session", params=BACKENDS)
def db_backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def session_db(db_backend, tmp_path_factory) -> Iterator[Database]:
    """One migrated database per backend for the whole test session."""
    database, cleanup = make_database(db_backend, tmp_path_factory.mktemp(f"db-{db_backend}"), f"s{os.getpid()}")
    yield database
    cleanup()


@pytest.fixture
def db(session_db) -> Iterator[Database]:
    """The session database, emptied of everything but reference data after the test."""
    yield session_db
    truncate(session_db)


def truncate(database: Database) -> None:
    keep = reference_tables() | {"alembic_version"}
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name not in keep]
    with database.engine.begin() as conn:
        if database.is_sqlite:
            for table in tables:
                conn.execute(table.delete())
        else:
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def codes_db(session_db) -> Database:
    """The session database with every shipped code set imported once per
    backend, plus the synthetic practitioner NCCI and MUE files in
    tests/data/ncci (the hospital PTP table is the shipped one).  Code
    tables are reference data, so ``db`` keeps them after each test; request
    ``codes_db`` (then ``db`` as usual) in tests that need codes."""
    from mailbot.codes.importers import import_sets

    ncci_dir = DATA_DIR / "ncci"
    import_sets(session_db, source=TESTS_DIR.parent / "data" / "codesets",
                ncci=sorted(p for p in ncci_dir.glob("*.txt") if "hospital" not in p.name),
                mue=sorted(ncci_dir.glob("*.csv")))
    return session_db


@pytest.fixture
def fresh_db(db_backend, tmp_path) -> Iterator[Database]:
    """A brand-new migrated database for this test alone (for importers and
    migrations); slower than ``db``."""
    database, cleanup = make_database(db_backend, tmp_path, f"f{uuid.uuid4().hex[:8]}")
    yield database
    cleanup()


def make_settings(tmp_path: Path, database: Database | None = None, **overrides) -> Settings:
    """Settings isolated in ``tmp_path`` (no config file, no MAILBOT_* env)."""
    values = {
        "service.var_dir": str(tmp_path / "var"),
        "smtp.port": 0,
        "web.port": 0,
        "broker.namespace": f"mailbot-test-{RUN_ID}",
    }
    if database is not None:
        values["database.url"] = database.url
    values.update(overrides)
    return load_settings(path=None, environ={}, overrides=values)


@pytest.fixture
def settings(tmp_path, db) -> Settings:
    return make_settings(tmp_path, db)


@pytest.fixture
def ctx(settings, db) -> Iterator[Context]:
    """A configured process context on the test database (embedded broker)."""
    context = Context(settings, db=db)
    previous = configure(context)
    yield context


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); start it: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")
    yield REDIS_URL
    for key in client.scan_iter(f"mailbot-test-{RUN_ID}*"):
        client.delete(key)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, one per test module.  Playwright's sync API
    keeps an event loop running in the main thread while it is open, so a
    test must never start a second one (use this fixture), and it must not
    outlive the module (later tests may run asyncio code of their own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
