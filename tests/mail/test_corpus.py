"""Real-world messages nobody here wrote, routed right over real SMTP (issue 17).

``tests/data/corpus/`` holds 198 messages from test data shipped in PyPI
packages (CPython's ``test_email``, flufl.bounce, talon, django-mailbox; see
its README for sources and licences).  ``manifest.csv`` says, for each
(message, recipient), what the message is -- a person's question, a
command, a bounce, list mail, or not a message at all -- and why.  Each is
delivered to the real listener over SMTP (so the bounds and the line length
apply), processed by the router, and checked against that label, in a
database of its own (several corpus files share a Message-ID, which would
otherwise make later ones duplicates).  Nothing may raise.

Rows whose ``open`` column names an issue point would be routed wrong
today: for those the test accepts the right route or a clear recorded
decision (a route or a quarantine reason, never an exception or a lost
message), and :data:`MAX_OPEN` only ever goes down.  None is open now: the
last ten (null-sender bounces without From, a Mailman 2 digest, two
personal replies a forwarder stamped ``Precedence: bulk``) are held to
their labels like every other row.
"""

from __future__ import annotations

import csv
import smtplib

import pytest

from mailbot.context import Context
from mailbot.mail.smtp_listener import SmtpListener
from mailbot.models import InboundMessage
from mailbot.services.inbound import process
from tests.conftest import DATA_DIR, make_settings
from tests.mail.conftest import StoredIds, crlf

CORPUS = DATA_DIR / "corpus"
MANIFEST = list(csv.DictReader((CORPUS / "manifest.csv").open(encoding="utf-8")))

# What each label means in routing terms: (status, acceptable actions, a word the route reason holds).
EXPECTED = {
    "question": ("processed", {"consult", "followup"}, ""),
    "command": ("processed", {"command"}, ""),
    "bounce": ("processed", {"bounce"}, ""),
    "list": ("dropped", {"auto_submitted"}, ""),
    "auto-reply": ("dropped", {"auto_submitted"}, ""),
    "not-a-message": ("quarantined", {"quarantined"}, ""),
}


MAX_OPEN = 0


def test_the_corpus_is_big_enough_and_every_file_is_labelled():
    files = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*")
             if p.is_file() and not p.name.startswith("LICENSE")} - {"README.md", "manifest.csv"}
    labelled = {row["file"] for row in MANIFEST}
    assert files == labelled
    assert len(files) >= 150
    assert {row["expected"] for row in MANIFEST} <= set(EXPECTED)
    assert sum(bool(row["open"]) for row in MANIFEST) <= MAX_OPEN


@pytest.fixture(scope="module")
def corpus_listener(tmp_path_factory, session_db):
    stored = StoredIds()
    tmp = tmp_path_factory.mktemp("corpus")
    listener = SmtpListener(Context(make_settings(tmp, session_db), db=session_db), on_stored=stored)
    listener.start()
    yield listener
    listener.stop()


def _deliver(listener: SmtpListener, raw: bytes, sender: str, recipient: str) -> int:
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=60) as smtp:
        smtp.ehlo("corpus.example")
        code, reply = smtp.mail("" if sender == "<>" else sender)
        assert code == 250, reply
        code, reply = smtp.rcpt(recipient)
        assert code == 250, reply
        code, reply = smtp.data(raw)
    assert code == 250, reply
    return int(reply.decode().rsplit("#", 1)[1])


@pytest.mark.parametrize("row", MANIFEST, ids=[f"{r['file']}->{r['envelope_to'].split('@')[0]}" for r in MANIFEST])
def test_each_real_world_message_is_routed_right(row, corpus_listener, db, tmp_path):
    raw = crlf((CORPUS / row["file"]).read_bytes())
    # SMTP transparency: smtplib dot-stuffs; a bare "." line in a file is content.
    inbound_id = _deliver(corpus_listener, raw, row["envelope_from"], row["envelope_to"])
    ctx = Context(make_settings(tmp_path, db), db=db)
    process(ctx, inbound_id)
    with db.read() as session:
        stored = session.get(InboundMessage, inbound_id)
    status, actions, _ = EXPECTED[row["expected"]]
    right = (stored.status, stored.action) in {(status, a) for a in actions}
    if row["open"] and not right:
        # Known wrong today (the open issue point): still a clear, recorded decision.
        assert stored.status in {"processed", "dropped", "quarantined"} and (stored.route or stored.error)
        return
    assert right, (
        f"{row['file']}: expected {row['expected']} ({row['why']}), got {stored.status}/{stored.action}: "
        f"{stored.route} {stored.error}")
    if row["expected"] == "not-a-message":
        assert "cannot parse" in stored.error
    if row["expected"] == "question" and any(e["rule"] == "forwarded_bulk" for e in stored.route):
        assert not stored.auto_reply_ok   # queued for a reviewer, no acknowledgement to a bulk-stamped message
    if row["expected"] == "list":
        assert any("Precedence" in e["reason"] or "list" in e["reason"] for e in stored.route)
