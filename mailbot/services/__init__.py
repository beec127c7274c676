"""Use cases: the only code that combines database writes with I/O.

Each function takes the :class:`~mailbot.context.Context` (or a session) and
ids, moves state forward with conditional updates, and is safe to call twice.
"""

from typing import NamedTuple


class Poke(NamedTuple):
    """"Run actor ``actor`` for row ``id``": what a service asks the queue to do
    next.  Services return pokes instead of importing the queue (the queue
    layer sits above this package); the database already holds the state,
    so a lost poke is recovered by the reconciler."""

    actor: str
    id: int | list[int]   # a row id; batch actors (send_digests, deliver_batch) take a list
