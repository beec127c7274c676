"""The detail page: the thread, attachments, what the model saw, the draft,
and every cited code with its knowledge-base card, verdict and NCCI/MUE
warnings (against the imported code sets)."""

from __future__ import annotations

import re

import pytest

from mailbot.models import AuditEvent
from tests.web.conftest import seed_consultation, sign_in

CITED = [{"code": "20610", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "99213", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "E11.22", "system": "icd10cm", "role": "diagnosis", "status": "ok", "ok": True},
         {"code": "J1030", "system": "hcpcs", "role": "supply", "status": "ok", "ok": True}]


@pytest.fixture
def knowledge(codes_db, db):
    return db


def _card(page: str, code: str) -> str:
    match = re.search(r'<div class="code-card[^"]*">\s*<div class="code-head"><code>' + re.escape(code)
                      + r"</code>.*?</div>\s*</div>", page, re.S)
    assert match, f"no card for {code}"
    return match.group(0)


def test_cited_codes_show_cards_verdicts_and_ncci_mue(client, knowledge, alice):
    cid = seed_consultation(knowledge, cited=CITED, claimed_by=alice.id)
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    diabetes = _card(page, "E11.22")
    assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in diabetes
    assert 'class="code-card ok"' in diabetes and "ICD-10-CM FY" in diabetes
    cpt = _card(page, "20610")
    assert "AMA licence" in cpt and "unlicensed descriptor" in cpt          # never a CPT descriptor
    assert "MUE</b> 2 per day" in cpt
    terminated = _card(page, "J1030")                                        # freshly verified, not the stored "ok"
    assert 'class="code-card bad"' in terminated and "terminated" in terminated and "valid until" in terminated
    assert re.search(r"NCCI 20610 / 99213</b>.*?bundled into 20610", page, re.S)


def test_quick_lookup_panel_finds_codes_and_words(client, knowledge, alice):
    cid = seed_consultation(knowledge, cited=[])
    sign_in(client, alice)
    by_code = client.get(f"/consultations/{cid}?q=e1122").text
    panel = by_code[by_code.index('id="lookup"'):]
    assert "E11.22" in panel and "diabetic chronic kidney disease" in panel
    by_words = client.get(f"/consultations/{cid}?q=methylprednisolone+injection").text
    hits = by_words[by_words.index('id="lookup"'):]
    assert re.search(r"<li><code>J\d{4}</code> Injection, methylprednisolone", hits)


def test_thread_attachment_and_redacted_text(client, db, alice):
    pdf = b"%PDF-1.4 op note"
    cid = seed_consultation(db, cited=[], attachment=("op note.pdf", "application/pdf", pdf))
    html_cid = seed_consultation(db, cited=[], attachment=("x.html", "text/html", b"<script>alert(1)</script>"))
    sign_in(client, alice)
    page = client.get(f"/consultations/{cid}").text
    assert "Patient seen for knee pain" in page                      # the asker's text
    assert "Patient [NAME] seen for knee pain" in page               # what the model saw
    assert "1 redaction: name" in page
    link = re.search(r'<a href="(/consultations/\d+/attachments/\d+)" download>op note.pdf</a>', page).group(1)
    download = client.get(link)
    assert download.content == pdf and download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == 'attachment; filename="op note.pdf"; filename*=UTF-8\'\'op%20note.pdf'
    other = client.get(f"/consultations/{html_cid}").text
    html_link = re.search(r'<a href="(/consultations/\d+/attachments/\d+)" download>', other).group(1)
    served = client.get(html_link)
    assert served.headers["content-type"] == "application/octet-stream"   # never rendered as HTML
    assert "sandbox" in served.headers["content-security-policy"]
    # an attachment is only reachable through its own consultation
    assert client.get(html_link.replace(f"/consultations/{html_cid}/", f"/consultations/{cid}/")).status_code == 404


def test_audit_log_shows_who_when_and_the_change(client, db, alice):
    cid = seed_consultation(db, cited=[])
    with db.session() as session:
        session.add(AuditEvent(consultation_id=cid, actor="alice@coders.example", action="draft_saved",
                               before="line one\nold line\n", after="line one\nnew line\n"))
    sign_in(client, alice)
    assert "draft saved" in client.get(f"/consultations/{cid}").text
    audit = client.get(f"/consultations/{cid}/audit").text
    assert '<span class="del">-old line</span>' in audit and '<span class="add">+new line</span>' in audit
    assert client.get("/consultations/999999").status_code == 404


def test_quick_lookup_panel_accepts_the_mail_syntax(client, knowledge, alice):
    cid = seed_consultation(knowledge, cited=[])
    sign_in(client, alice)
    checked = client.get(f"/consultations/{cid}", params={"q": "CHECK e1122 J1030"}).text
    panel = checked[checked.index('id="lookup"'):]
    assert "E11.22" in panel and "J1030" in panel and "Nothing found" not in panel
    searched = client.get(f"/consultations/{cid}", params={"q": "SEARCH methylprednisolone injection"}).text
    assert re.search(r"<li><code>J\d{4}</code> Injection, methylprednisolone", searched[searched.index('id="lookup"'):])


def test_an_unlicensed_descriptor_is_not_shown_green(client, knowledge, alice):
    cid = seed_consultation(knowledge, cited=CITED, claimed_by=alice.id)
    sign_in(client, alice)
    cpt = _card(client.get(f"/consultations/{cid}").text, "20610")
    assert 'class="code-card licence"' in cpt and 'class="code-card ok"' not in cpt
