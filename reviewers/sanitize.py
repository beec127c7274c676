"""Showing inbound HTML without letting it act.

Mail HTML is cleaned with nh3 (Ammonia): scripts, event handlers, styles,
forms and ``javascript:`` URLs are removed, links get ``rel=noopener
noreferrer nofollow``.  Every image source is dropped as well -- a remote
image is a tracking beacon that would tell the sender when, and from where,
a reviewer opened their message -- and the page's Content-Security-Policy
(``img-src 'self' data:``) would refuse one anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3

_TAGS = set(nh3.ALLOWED_TAGS)  # img stays, without its source (alt text shows where it was)
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["img"] = {"alt", "width", "height", "src"}  # src is filtered out below, counted as blocked
_URL_SCHEMES = {"http", "https", "mailto", "cid"}  # cid: so inline images reach the filter and are counted


@dataclass
class CleanHtml:
    html: str
    blocked_images: int


def clean(html: str) -> CleanHtml:
    """Sanitized HTML, safe to put in a page, and how many images were blocked."""
    blocked = 0

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            blocked += 1
            return None
        return value

    cleaned = nh3.clean(
        html or "",
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=attribute_filter,
    )
    return CleanHtml(html=cleaned, blocked_images=blocked)
