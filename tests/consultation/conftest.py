"""Fixtures for the consultation workflow: a loopback LLM, a relay sink,
a reviewer, and a context wired to them on the test database (with the
code sets loaded by ``codes_db``)."""

from __future__ import annotations

import pytest

from mailbot.context import Context, configure
from mailbot.models import Reviewer
from tests.conftest import make_settings
from tests.support.fake_llm import FakeLlm
from tests.support.relay_sink import RelaySink


@pytest.fixture(scope="session")
def fake_llm_server():
    server = FakeLlm().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm_server) -> FakeLlm:
    fake_llm_server.reset()
    return fake_llm_server


@pytest.fixture
def sink():
    with RelaySink() as relay:
        yield relay


@pytest.fixture
def reviewer(db) -> int:
    with db.session() as session:
        row = Reviewer(email="cora@example.org", name="Cora Reyes", credential="CPC")
        session.add(row)
        session.flush()
        return row.id


def consult_settings(tmp_path, db, sink, llm, **overrides):
    values = {
        "relay.host": "127.0.0.1", "relay.port": sink.port, "relay.timeout_seconds": 10,
        "llm.base_url": llm.base_url if llm is not None else "", "llm.model": "fake-model",
        "llm.timeout_seconds": 5, "llm.max_retries": 1,
        **overrides,
    }
    return make_settings(tmp_path, db, **values)


@pytest.fixture
def cctx(tmp_path, codes_db, db, sink, llm) -> Context:
    """A context on the test database with the code sets loaded, the fake
    LLM and the relay sink."""
    return configure(Context(consult_settings(tmp_path, db, sink, llm), db=db))

