"""Fixtures for the fault suite: a private Redis that can be killed, the
product's processes started as an operator would, a loopback LLM, a relay
sink, and a small "wait until" helper.

The shared Redis on 6379 is never touched here: tests that kill Redis start
their own ``redis-server`` on a free loopback port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailbot.config import Settings
from tests.support.children import die_with_parent
from tests.support.fake_llm import FakeLlm
from tests.support.net import free_port, wait_for_port
from tests.support.relay_sink import RelaySink

REPO = Path(__file__).resolve().parents[2]
MAILBOT = str(Path(sys.executable).with_name("mailbot"))


def wait(predicate: Callable[[], Any], what: str, timeout: float = 40.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def service_env(settings: Settings) -> dict[str, str]:
    """The environment an operator would give a mailbot process for ``settings``
    (no config file: every value that matters as MAILBOT_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    values = {
        "database.url": settings.database_url,
        "broker.url": settings.broker.url,
        "broker.namespace": settings.broker.namespace,
        "broker.embedded_threads": settings.broker.embedded_threads,
        "service.var_dir": settings.service.var_dir,
        "relay.host": settings.relay.host,
        "relay.port": settings.relay.port,
        "relay.max_attempts": settings.relay.max_attempts,
        "smtp.host": "127.0.0.1",
        "smtp.port": settings.smtp.port,
        "guards.daily_reply_cap": settings.guards.daily_reply_cap,
        "llm.base_url": settings.llm.base_url,
        "llm.model": settings.llm.model,
        "codes.load_on_serve": settings.codes.load_on_serve,
    }
    env.update({"MAILBOT_" + k.upper().replace(".", "__"): str(v) for k, v in values.items()})
    env["PYTHONPATH"] = str(REPO)
    return env


class Process:
    """A ``mailbot <part>`` subprocess in its own process group, logging to a file."""

    def __init__(self, part: str, settings: Settings, log: Path, port: int | None = None) -> None:
        self.log_path = log
        self.log = log.open("ab")
        self.proc = subprocess.Popen([MAILBOT, part], cwd=log.parent, env=service_env(settings),
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_parent())
        if port is not None:
            try:
                wait_for_port(port, timeout=60, process=None)
            except AssertionError:
                self.kill()
                raise AssertionError(f"mailbot {part} did not listen on {port}: {log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group (no clean shutdown)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM, as an operator stops the service; SIGKILL if it hangs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture
def processes() -> Iterator[Callable[..., Process]]:
    """Start mailbot processes; every one still running is killed afterwards."""
    started: list[Process] = []

    def start(part: str, settings: Settings, log: Path, port: int | None = None) -> Process:
        started.append(Process(part, settings, log, port))
        return started[-1]

    yield start
    for process in started:
        process.kill()


class RedisServer:
    """A private ``redis-server`` on a loopback port, without persistence:
    killing it loses every queued message, as a crash of a cache-only Redis does."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent())
        wait_for_port(self.port, timeout=20)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill9()


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm) -> FakeLlm:
    fake_llm.reset()
    return fake_llm


@pytest.fixture
def sink() -> Iterator[RelaySink]:
    with RelaySink() as relay:
        yield relay


def kinds(sink: RelaySink) -> list[str]:
    """The X-Mailbot-Kind of every message the relay accepted, in order."""
    return [str(m.message["X-Mailbot-Kind"]) for m in sink.messages]


def replies_to(sink: RelaySink) -> dict[str, int]:
    """How many replies the relay got for each In-Reply-To."""
    counts: dict[str, int] = {}
    for m in sink.messages:
        key = str(m.message["In-Reply-To"] or "")
        counts[key] = counts.get(key, 0) + 1
    return counts
