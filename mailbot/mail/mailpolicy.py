"""The ``email`` policy every part of mailbot parses and writes with.

It is ``email.policy.default`` in every rule it applies; only two costs
differ, both from re-doing work whose result cannot change:

- the stdlib's ``HeaderRegistry.__getitem__`` builds a new class
  (``type(...)``) every time a header is set, read or counted -- twice per
  header set on a message (``header_max_count``, then the parse), once per
  read.  That is 50-170 us a time here, and a reply or a digest sets a dozen
  headers: a quarter of a digest worker's CPU in py-spy (issue 16).
  :class:`CachedRegistry` builds each header class once per name.
- ``policy.default`` parses a header's raw value afresh on *every* read
  (``msg.get``, ``msg[...]``, ``get_content_type``, ``get_param`` ...): the
  router and the parser ask for a request's ``Content-Type`` 14 times, ~0.25 ms
  a time -- 4 ms of a ~25 ms automated reply (issue 16).  :class:`CachedPolicy`
  keeps the header objects of the last :data:`FETCH_CACHE_SIZE` short values
  read, keyed by (name, raw value): the same text always parses to the same
  object, and header objects are read-only (their params and address lists
  are immutable views), so handing out the same one again changes nothing.
  Setting a header from text is cached the same way: a reply sets the same
  ``X-Loop``, ``Auto-Submitted``, ``Precedence`` ... on every message, and
  folding reads a header object without changing it.  Long values (over
  :data:`FETCH_CACHE_MAX_CHARS`, where a hostile header would hold memory)
  are parsed every time, as before.

One rule differs, and it is a fix: ``List-Unsubscribe`` (RFC 2369) is a
list of ``<URI>``s, which the stdlib folds like free text -- a long one
(a signed unsubscribe link is) came out as RFC 2047 encoded words, which
mail clients do not decode, hiding the one-click unsubscribe.
:class:`ListUnsubscribeHeader` folds it after each comma instead.
"""

from __future__ import annotations

from email import policy as _policy
import re
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.policy import EmailPolicy
from functools import lru_cache

FETCH_CACHE_SIZE = 512
FETCH_CACHE_MAX_CHARS = 512


# One RFC 2369 URI in angle brackets: printable ASCII but < and >, no spaces.
LIST_URI = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+>")
# RFC 5322's hard limit on a line, CRLF excluded.
MAX_LINE = 998


class ListUnsubscribeHeader(UnstructuredHeader):
    """``List-Unsubscribe: <https://...>,<CRLF> <mailto:...>`` -- each URI
    whole on its line, never encoded; a value that is not such a list (or a
    URI too long for one line) is folded as free text, as before."""

    def fold(self, *, policy):
        uris = [part.strip() for part in str(self).split(",")]
        if all(LIST_URI.fullmatch(uri) and len(self.name) + len(uri) + 3 <= MAX_LINE for uri in uris):
            return f"{self.name}: " + ("," + policy.linesep + " ").join(uris) + policy.linesep
        return super().fold(policy=policy)


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


class CachedPolicy(EmailPolicy):
    """``EmailPolicy`` whose header reads and sets reuse the object parsed
    last time for the same short (name, text)."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or len(value) > FETCH_CACHE_MAX_CHARS:
            return super().header_fetch_parse(name, value)
        return _fetched(self, name, value)

    def header_store_parse(self, name, value):
        if not isinstance(value, str) or len(value) > FETCH_CACHE_MAX_CHARS:
            return super().header_store_parse(name, value)
        return _stored(self, name, value)   # raises as the stdlib does (CR/LF in a value): never cached


@lru_cache(maxsize=FETCH_CACHE_SIZE)
def _fetched(policy: CachedPolicy, name: str, value: str):
    return EmailPolicy.header_fetch_parse(policy, name, value)


@lru_cache(maxsize=FETCH_CACHE_SIZE)
def _stored(policy: CachedPolicy, name: str, value: str):
    return EmailPolicy.header_store_parse(policy, name, value)


def _registry() -> CachedRegistry:
    registry = CachedRegistry()
    registry.map_to_type("list-unsubscribe", ListUnsubscribeHeader)
    return registry


POLICY = CachedPolicy(header_factory=_registry())
