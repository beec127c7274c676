"""The session signing key: from the environment; a temporary one (with a
warning) only in embedded mode."""

from __future__ import annotations

import logging

import pytest

from mailbot.config import ConfigError
from reviewers.sessions import session_secret
from tests.conftest import make_settings


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_embedded_mode_without_secret_uses_a_temporary_one_and_warns(tmp_path):
    settings = make_settings(tmp_path)
    records = _Records()
    logger = logging.getLogger("reviewers.sessions")
    logger.addHandler(records)
    try:
        first, second = session_secret(settings), session_secret(settings)
    finally:
        logger.removeHandler(records)
    assert len(first) >= 32 and first != second
    assert any("MAILBOT_WEB__SESSION_SECRET" in m for m in records.messages)


def test_scaled_mode_refuses_to_start_without_a_shared_secret(tmp_path):
    settings = make_settings(tmp_path, **{"broker.url": "redis://127.0.0.1:6379/0"})
    with pytest.raises(ConfigError, match="MAILBOT_WEB__SESSION_SECRET"):
        session_secret(settings)


def test_short_secret_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="shorter than 32"):
        session_secret(make_settings(tmp_path, **{"web.session_secret": "too-short"}))


def test_configured_secret_is_used(tmp_path):
    secret = "s" * 48
    assert session_secret(make_settings(tmp_path, **{"web.session_secret": secret})) == secret
