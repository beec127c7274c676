"""Configure dramatiq before any actor is imported.

``broker.url`` chooses the broker:

- ``redis://host:port/db`` -> ``RedisBroker`` (the scaled mode: any number of
  ``dramatiq workflows.actors`` / ``mailbot worker`` processes);
- ``amqp://...`` -> ``RabbitmqBroker`` (needs ``pip install 'dramatiq[rabbitmq]'``);
- empty -> a ``StubBroker`` drained by an in-process worker (embedded mode,
  see ``workflows.embedded``); its queue lives in memory, and the
  reconciler re-enqueues whatever a restart lost from the database.

Importing this module installs the broker for the current settings.
:func:`install` can be called again (tests, ``serve``) with other settings; it
moves every already-declared actor onto the new broker.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker

from mailbot.config import ConfigError, Settings
from mailbot.context import current

# The queue of work that takes seconds per message (drafting, bulk mail):
# kept apart so it never holds the threads that route mail and answer
# commands (``workflows.embedded``; issue 17, point 15).  Everything else is
# on dramatiq's ``default`` queue.
SLOW = "slow"


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.broker.url
    if not url:
        return StubBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=settings.broker.namespace)
    if url.startswith(("amqp://", "amqps://")):
        try:
            from dramatiq.brokers.rabbitmq import RabbitmqBroker
        except ImportError:
            raise ConfigError(
                "broker.url is an amqp:// URL but pika is not installed: pip install 'dramatiq[rabbitmq]'"
            ) from None
        return RabbitmqBroker(url=url)
    raise ConfigError(f"bad value for broker.url = {url!r}: expected redis://, rediss://, unix:// or amqp://, or empty for embedded")


def install(settings: Settings) -> dramatiq.Broker:
    """Make a broker for ``settings`` the global one, carrying declared actors over."""
    try:
        old = dramatiq.get_broker()
    except Exception:  # pragma: no cover - get_broker builds a default lazily
        old = None
    new = build_broker(settings)
    if old is not None and old is not new:
        for actor in list(old.actors.values()):
            actor.broker = new
            new.declare_actor(actor)
        old.close()
    dramatiq.set_broker(new)
    return new


broker = install(current().settings)
