"""Fixtures for the inbound mail tests: a real SMTP listener on loopback and
helpers to read the .eml corpus."""

from __future__ import annotations

from collections.abc import Iterator
import time
from pathlib import Path

import pytest

from mailbot.context import Context
from mailbot.mail.smtp_listener import SmtpListener
from tests.conftest import DATA_DIR


def eml(name: str) -> bytes:
    return (DATA_DIR / name).read_bytes()


def crlf(raw: bytes) -> bytes:
    """SMTP wants CRLF line ends; the corpus files use LF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class StoredIds(list):
    """``on_stored`` callback that remembers the ids intake returned."""

    def __call__(self, inbound_id: int) -> None:
        self.append(inbound_id)

    def wait(self, n: int = 1, timeout: float = 10.0) -> list[int]:
        """The listener pokes after answering 250, from its thread pool."""
        deadline = time.monotonic() + timeout
        while len(self) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self)


@pytest.fixture
def stored() -> StoredIds:
    return StoredIds()


@pytest.fixture
def listener(ctx: Context, stored: StoredIds) -> Iterator[SmtpListener]:
    smtp = SmtpListener(ctx, on_stored=stored)
    smtp.start()
    yield smtp
    smtp.stop()


def corpus() -> list[Path]:
    return sorted(DATA_DIR.glob("*.eml"))
