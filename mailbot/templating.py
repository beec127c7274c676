"""The one Jinja2 environment.

Autoescape is on for ``.html`` templates and off for ``.txt`` (plain-text
mail must not contain ``&amp;``); ``StrictUndefined`` turns a missing context
value into an error instead of a silently empty sentence in a reply.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailbot.config import REPO_ROOT

TEMPLATES_DIR = REPO_ROOT / "templates"


@lru_cache(maxsize=4)
def environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # templates ship with the code (a deploy restarts the processes): no stat() of every
        # template a reply extends or includes on each render (issue 16, ~12 per LOOKUP reply)
        auto_reload=False,
    )
    env.filters["wrap"] = _wrap
    return env


def _wrap(text: str, width: int = 76, indent: str = "") -> str:
    """``text`` wrapped at ``width``, paragraph by paragraph.

    Short texts are kept (the last 4,096): a LOOKUP reply wraps ~40 code
    descriptors and notes, the same code set facts again and again, and
    textwrap was ~5% of a reply's CPU (issue 16).  Long texts -- a reviewed
    answer, a question -- are wrapped afresh and never kept in memory."""
    text = str(text)
    if len(text) > _WRAP_CACHE_MAX_CHARS or not isinstance(width, int) or not isinstance(indent, str):
        return _wrapped(text, width, indent)
    return _wrapped_cached(text, width, indent)


_WRAP_CACHE_MAX_CHARS = 400


def _wrapped(text: str, width: int, indent: str) -> str:
    import textwrap

    lines = []
    for paragraph in text.splitlines():
        if not paragraph.strip():
            lines.append("")
            continue
        lines.extend(textwrap.wrap(paragraph, width=width, subsequent_indent=indent,
                                   break_long_words=False, break_on_hyphens=False) or [""])
    return "\n".join(lines)


_wrapped_cached = lru_cache(maxsize=4096)(_wrapped)
