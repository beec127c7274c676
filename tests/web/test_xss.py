"""Hostile inbound mail is shown inert on the detail page."""

from __future__ import annotations

import re

import pytest

from reviewers import sanitize
from tests.web.conftest import seed_consultation, sign_in

PAYLOADS = [
    '<script>alert("x")</script>',
    '<img src="x" onerror="alert(1)">',
    '<img src="https://tracker.example/pixel.gif?id=42" width="1" height="1">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click2</a>',
    '<svg onload="alert(1)"><circle r="4"/></svg>',
    '<iframe src="https://evil.example/"></iframe>',
    '<div style="background:url(https://tracker.example/bg.png)">bg</div>',
    '<form action="https://evil.example/"><input name="pw"></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<base href="https://evil.example/">',
    '<object data="https://evil.example/x.swf"></object>',
    '<p onmouseover="alert(1)">hover</p>',
    '<table background="https://tracker.example/t.png"><tr><td>cell</td></tr></table>',
    '<img srcset="https://tracker.example/a.png 1x">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<style>body{background:url(https://tracker.example/s.png)}</style>',
]


def _inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert not re.search(r"\son\w+\s*=", lowered), html
    assert "javascript:" not in lowered
    assert "tracker.example" not in lowered and "evil.example" not in lowered, html
    for tag in ("<iframe", "<svg", "<form", "<meta", "<base", "<object", "<link", "<style"):
        assert tag not in lowered, (tag, html)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitizer_neutralises(payload):
    _inert(sanitize.clean(f"<p>Question</p>{payload}<p>end</p>").html)


def test_remote_images_are_counted_as_blocked():
    cleaned = sanitize.clean('<p>x</p><img src="https://t.example/a.gif"><img src="cid:part1">')
    assert cleaned.blocked_images == 2
    assert "src=" not in cleaned.html


def test_detail_page_shows_hostile_mail_inert(client, db, alice):
    html = "<p>Hello</p>" + "".join(PAYLOADS)
    text = 'Plain part <script>alert("text")</script> and <img src=x onerror=alert(2)>'
    cid = seed_consultation(db, subject='<script>alert("subject")</script>', text=text, html=html,
                            asker='"<b>bold</b>" <coder@clinic.example>'[:60])
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    body = page[page.index("<main>"):]
    mailhtml = re.search(r'<div class="mailhtml">(.*?)</div>\s*</details>', body, re.S).group(1)
    _inert(mailhtml)
    assert "Hello" in mailhtml
    # the text part and the subject are escaped, not interpreted
    assert "&lt;script&gt;alert(&#34;text&#34;)&lt;/script&gt;" in body
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;" in body
    assert "<script>" not in body.replace('<script src="/static/app.js" defer></script>', "")
    assert "images blocked" in body or "image blocked" in body


def test_queue_escapes_subjects(client, db, alice):
    seed_consultation(db, subject='<img src=x onerror=alert(1)>')
    sign_in(client, alice)
    page = client.get("/queue").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
