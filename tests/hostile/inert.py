"""Is a page inert?  A real HTML parse of the response, not a substring test:
an escaped payload is text, so only elements and attributes the browser
would build count.

A page is inert when it has no script but the app's own, no event-handler
attribute, no ``javascript:``/``data:``/``vbscript:`` URL, no frame, object,
embed, base, meta refresh or form posting elsewhere, and no remote URL.
"""

from __future__ import annotations

from html.parser import HTMLParser

OWN_SCRIPTS = {"/static/app.js"}
FORBIDDEN_TAGS = {"iframe", "frame", "object", "embed", "base", "applet", "svg", "math", "style"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "background", "poster", "data", "srcset", "lowsrc"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "script":
            if values.get("src") not in OWN_SCRIPTS:
                self.problems.append(f"<script {values}>")
        elif tag == "link":
            if not values.get("href", "").startswith("/static/") and not values.get("href", "").startswith("/lookup/"):
                self.problems.append(f"<link {values}>")
        elif tag == "meta":
            if "http-equiv" in values:
                self.problems.append(f"<meta {values}>")
        elif tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in values.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>")
            if name in URL_ATTRS or name == "style":
                lowered = "".join(value.split()).lower()
                if lowered.startswith(("javascript:", "vbscript:", "data:text/html")) or "expression(" in lowered:
                    self.problems.append(f"<{tag} {name}={value!r}>")
                if name in URL_ATTRS and lowered.startswith(("http://", "https://", "//")) \
                        and "testserver" not in lowered and "127.0.0.1" not in lowered:
                    if not (tag == "a" and name == "href"):         # links are allowed (rel=noopener)
                        self.problems.append(f"<{tag} {name}={value!r}>")
            if tag == "form" and name == "action" and value and not value.startswith("/"):
                self.problems.append(f"<form action={value!r}>")


def problems(html: str) -> list[str]:
    """What in ``html`` could act in a browser (empty: inert)."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.problems
