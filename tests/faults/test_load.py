"""The load run in small: 300 mixed messages from 10 concurrent SMTP
clients to a ``mailbot smtpd`` process, 2 ``mailbot worker`` processes on
Redis, on SQLite and PostgreSQL.  The same invariants as ``bench/load.py``
(which runs 10,000 and reports the latencies): every 250 is stored and
nothing else, the queue drains to 0, every request gets exactly one reply.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid

import pytest

from tests.conftest import RUN_ID
from tests.faults.conftest import REPO

pytestmark = pytest.mark.faults


def _bench_load():
    spec = importlib.util.spec_from_file_location("bench_load", REPO / "bench" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module        # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_300_mixed_messages_from_10_clients_are_stored_once_and_answered_once(tmp_path, codes_db, db, redis_url):
    load = _bench_load()
    results = load.run_load(load.LoadRun(
        db.url, redis_url, tmp_path, messages=300, clients=10, workers=2, threads=4, baseline_lookups=3,
        drain_timeout=150, namespace=f"mailbot-test-{RUN_ID}-load-{uuid.uuid4().hex[:6]}"), log=lambda *a, **k: None)

    assert results["checks"] == {
        "stored_equals_acknowledged": True, "all_acknowledged": True, "queue_drained": True,
        "every_request_answered_exactly_once": True, "no_outbound_left_pending": True}, results
    assert results["stored"] == results["acknowledged"] == 300
    assert {kind: b["answered_once"] for kind, b in results["per_kind"].items()} == {
        "lookup": 150, "question": 75, "subscribe": 75}
