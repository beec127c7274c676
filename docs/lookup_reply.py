"""Regenerate ``docs/lookup-reply.png``: the HTML part of a real LOOKUP reply,
rendered by headless Chromium the way a mail client shows it.

    .venv/bin/python docs/lookup_reply.py [--db sqlite:///var/mailbot.db] [--codes "50250 J1030 E11.22"]

Uses the given database (the code sets are imported into it if missing) or a
scratch SQLite file; the reply is produced by the real command runner and
read back from the outbound queue, so the picture is what a sender gets.
Every network request from the page is blocked (as privacy-minded mail
clients do), which also proves the reply needs nothing remote.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def lookup_reply_html(ctx, codes: str, sender: str = "coder@example.org") -> str:
    """Run a LOOKUP through the command runner; return the reply's HTML part."""
    from mailbot.commands import runner
    from mailbot.models import InboundMessage, InboundStatus, OutboundMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"Casey Coder <{sender}>", "lookup@" + ctx.settings.service.domain, f"LOOKUP {codes}"
    msg["Message-ID"] = "<docs-lookup@example.org>"
    msg.set_content("")
    raw = msg.as_bytes()
    with ctx.db.session() as session:
        row = InboundMessage(source="cli", envelope_to=[str(msg["To"])], raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(),
                             message_id=str(msg["Message-ID"]), from_addr=sender, from_name="Casey Coder",
                             subject=str(msg["Subject"]), status=InboundStatus.PROCESSED, action="command")
        session.add(row)
        session.flush()
        inbound_id = row.id
    [poke] = runner.run(ctx, inbound_id)
    with ctx.db.read() as session:
        outbound = session.get(OutboundMessage, poke.id)
    reply = BytesParser(policy=policy.default).parsebytes(outbound.raw)
    return reply.get_body(("html",)).get_content()


def screenshot(html: str, path: Path, width: int = 760) -> dict:
    """Render ``html`` offline in Chromium; save a full-page PNG; returns what was seen."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", lambda route: (blocked.append(route.request.url), route.abort()))
            page.set_content(html, wait_until="load")
            seen = {
                "cards": page.locator(".card").count(),
                "text": page.inner_text("body"),
                "card_background": page.eval_on_selector(".card", "e => getComputedStyle(e).backgroundColor"),
                "height": page.evaluate("document.body.scrollHeight"),
            }
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    seen["blocked_requests"] = blocked
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="", help="database URL (default: a scratch SQLite file)")
    parser.add_argument("--codes", default="50250 J1030 E11.22 99213")
    parser.add_argument("--out", default=str(ROOT / "docs" / "lookup-reply.png"))
    args = parser.parse_args()

    from mailbot.codes.importers import ensure_loaded
    from mailbot.config import load_settings
    from mailbot.context import Context, configure

    tmp = Path(tempfile.mkdtemp(prefix="lookup-doc-"))
    url = args.db or f"sqlite:///{tmp / 'docs.db'}"
    ctx = configure(Context(load_settings(path=None, environ={}, overrides={
        "database.url": url, "service.var_dir": str(tmp / "var")})))
    ctx.db.upgrade()
    ensure_loaded(ctx)
    seen = screenshot(lookup_reply_html(ctx, args.codes), Path(args.out))
    print(f"wrote {args.out}: {seen['cards']} cards, {seen['height']} px high, "
          f"{len(seen['blocked_requests'])} remote requests blocked")


if __name__ == "__main__":
    main()
