"""Fixtures for the hostile-input suite: the hypothesis settings every fuzzer
uses, and the tally of what was tried (written at the end of the session).

The fuzzers are derandomized (the same examples on every run, so CI is
repeatable).  ``MAILBOT_TEST_FUZZ_SCALE=10`` multiplies every example count
for a longer, local run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import _TEST_ENV
from tests.hostile import tally

SCALE = max(1, int(_TEST_ENV.get("MAILBOT_TEST_FUZZ_SCALE", "1") or 1))


def fuzz_settings(examples: int) -> settings:
    """Repeatable, no deadline (2 shared cores), fixtures allowed."""
    return settings(max_examples=examples * SCALE, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


@pytest.fixture(scope="session", autouse=True)
def _write_tally():
    """Counts go to the repository only when asked (``MAILBOT_WRITE_TALLY=1``):
    an ordinary test run leaves the working tree as it found it."""
    yield
    if os.environ.get("MAILBOT_WRITE_TALLY") == "1":
        tally.write()
