"""Job board test fixtures."""

import pytest

from mailbot.jobs import digest


@pytest.fixture(autouse=True)
def _fresh_digest_caches():
    """Tests empty the database and reuse ids and fixed timestamps, which a
    production database never does; start each test without cached indexes or cards."""
    digest._indexes.clear()
    digest._recent.clear()
    digest.CARDS = digest.CardCache()
    yield
