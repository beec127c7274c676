"""The ``email`` policy every part of mailbot parses and writes with.

It is ``email.policy.default`` in every rule it applies; only its header
registry differs.  The stdlib's ``HeaderRegistry.__getitem__`` builds a new
class (``type(...)``) every time a header is set, read or counted -- twice
per header set on a message (``header_max_count``, then the parse), once per
read.  That is 50-170 us a time here, and a reply or a digest sets a dozen
headers: a quarter of a digest worker's CPU in py-spy (issue 16).
:class:`CachedRegistry` builds each header class once per name and hands the
same class out afterwards; the header objects themselves are made afresh as
before, so nothing else changes.
"""

from __future__ import annotations

from email import policy as _policy
from email.headerregistry import HeaderRegistry


class CachedRegistry(HeaderRegistry):
    """``HeaderRegistry`` with the header class of each name built once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, type] = {}

    def map_to_type(self, name, cls) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name):
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


POLICY = _policy.default.clone(header_factory=CachedRegistry())
