"""Regenerate the README's screenshots: docs/queue.png, docs/detail.png,
docs/preview.png (the mail approval will send), docs/macros.png (canned
responses) and docs/notes.png (the editor with a canned response, internal notes).

    .venv/bin/python docs/screenshots.py

Builds a throw-away SQLite database, imports the shipped code sets (and the
small synthetic NCCI/MUE sample files from tests/data/ncci -- real NCCI files
are not redistributable), seeds a realistic queue (made-up askers, no real
patient data), serves the reviewer app on loopback and photographs it with
headless Debian Chromium through Playwright.
"""

from __future__ import annotations

import random
import socket
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailbot.config import load_settings  # noqa: E402
from mailbot.context import Context, configure  # noqa: E402
from mailbot.db import Database  # noqa: E402
from mailbot.models import (  # noqa: E402
    Attachment, AuditEvent, Consultation, ConsultationNote, Draft, InboundMessage, Macro, Reviewer, utcnow,
)
from mailbot.services import accounts  # noqa: E402

PASSWORD = "screenshot-password"
QUESTIONS = [
    ("Can 20610 and 99213 be billed together?", ["cpt"], 1),
    ("ICD-10 for type 2 diabetes with CKD stage 3a", ["icd10cm"], 0),
    ("J1030 after the HCPCS update?", ["hcpcs"], 1),
    ("Modifier 59 vs XS for 11042 with 97597", ["cpt"], 1),
    ("Z79.4 with E11.65 - sequencing?", ["icd10cm"], 0),
    ("G0439 and 99397 on the same day", ["hcpcs", "cpt"], 0),
    ("Laterality for primary osteoarthritis, right knee", ["icd10cm"], 0),
    ("Telehealth new patient E/M level and POS", ["cpt"], 0),
    ("Walker E0143 with K0001 rental", ["hcpcs"], 0),
    ("Bilateral 20610 - units or modifier 50?", ["cpt"], 2),
    ("Sepsis due to UTI: which code first?", ["icd10cm"], 0),
    ("Trigger point injections 20552 with 20610", ["cpt"], 1),
]
ASKERS = [("Dana Whitfield", "dana@ridgeview-ortho.example"), ("Marcus Lee", "billing@lakeside-fp.example"),
          ("Priya Nair", "priya.nair@summit-health.example"), ("Tom Alvarez", "coding@valleyclinic.example"),
          ("Grace Kim", "gkim@northshore-im.example")]

QUESTION_TEXT = """Hi team,

Our provider saw a 58-year-old established patient for right knee pain and,
in the same visit, managed her hypertension and adjusted her metformin for
type 2 diabetes with CKD stage 3a. He injected the right knee (major joint,
no ultrasound guidance).

Can we bill 20610 together with 99213-25? And is E11.22 with N18.31 the right
diagnosis pairing for the diabetes part?

Thanks,
Dana Whitfield, CPC
Ridgeview Orthopedics"""

QUESTION_HTML = ("<p>Hi team,</p><p>Our provider saw a 58-year-old established patient for <b>right knee pain</b> "
                 "and, in the same visit, managed her hypertension and adjusted her metformin …</p>"
                 '<p><img src="https://tracker.example/open.gif" width="1" height="1"> '
                 "Can we bill <b>20610</b> together with <b>99213-25</b>?</p>")

DRAFT = """Yes, both can be reported for this visit when the documentation supports it.

1. The knee injection: report 20610 (major joint, without ultrasound guidance).
2. The E/M visit: 99213 may be reported with modifier 25 because the provider
   also managed the hypertension and the diabetes - a significant, separately
   identifiable service beyond the usual pre-procedure assessment.
   NCCI bundles 99213 into 20610 (column 2 / column 1) with modifier indicator
   1, so the edit is bypassed only when that separate work is documented.
3. Diagnoses: E11.22 (type 2 diabetes with diabetic chronic kidney disease)
   with N18.31 (CKD stage 3a) as the "use additional code" for the stage;
   M25.561 (pain in right knee) for the injection.

Link each diagnosis to its line: M25.561 to 20610; E11.22, N18.31 and I10 to 99213-25.
"""

CITED = [{"code": "20610", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "99213", "system": "cpt", "role": "procedure", "status": "unlicensed_descriptor", "ok": True},
         {"code": "E11.22", "system": "icd10cm", "role": "diagnosis", "status": "ok", "ok": True},
         {"code": "N18.31", "system": "icd10cm", "role": "diagnosis", "status": "ok", "ok": True},
         {"code": "M25.561", "system": "icd10cm", "role": "diagnosis", "status": "ok", "ok": True}]


def seed(db: Database) -> int:
    rnd = random.Random(11)
    now = utcnow()
    with db.session() as session:
        people = []
        for email, name, cred, role in [("maria.lopez@coders.example", "Maria Lopez", "CPC, CRC", "admin"),
                                        ("james.chen@coders.example", "James Chen", "CCS", "reviewer"),
                                        ("aisha.bello@coders.example", "Aisha Bello", "CPC", "reviewer")]:
            people.append(accounts.add_reviewer(session, email, name=name, credential=cred, role=role,
                                                password=PASSWORD))
        ids = [p.id for p in people]
    featured = None
    with db.session() as session:
        for i in range(36):
            subject, systems, flags = QUESTIONS[i % len(QUESTIONS)]
            name, email = ASKERS[i % len(ASKERS)]
            age = timedelta(hours=rnd.uniform(0.3, 40)) if i else timedelta(hours=26, minutes=12)
            claimed = rnd.choice([None, None, ids[1], ids[2]]) if i else ids[0]
            c = Consultation(subject=subject, asker_email=email, asker_name=name, state="awaiting_review",
                             created_at=now - age, waiting_since=now - age, state_changed_at=now - age,
                             code_systems=systems, flags=flags, claimed_by_id=claimed,
                             claimed_at=now - age / 2 if claimed else None,
                             root_message_id=f"<q{i}@ridgeview-ortho.example>")
            session.add(c)
            session.flush()
            if i == 0:
                featured = c.id
                inbound = InboundMessage(source="smtp", envelope_from=email, envelope_to=["ask@mailbot.example"],
                                         raw=b"", raw_sha256="0" * 64, message_id=c.root_message_id,
                                         from_addr=email, from_name=name, subject=subject, text=QUESTION_TEXT,
                                         full_text=QUESTION_TEXT, html=QUESTION_HTML,
                                         codes=["20610", "99213", "E11.22", "N18.31"], status="processed",
                                         action="consult", consultation_id=c.id, received_at=now - age)
                session.add(inbound)
                session.flush()
                c.last_inbound_id = inbound.id
                session.add(Attachment(inbound_id=inbound.id, filename="visit-note-redacted.pdf",
                                       content_type="application/pdf", size=48213, data=b"%PDF-1.4\n"))
                redacted = (QUESTION_TEXT.replace("58-year-old", "[AGE]-year-old")
                            .replace("Dana Whitfield, CPC", "[NAME], CPC"))
                session.add(Draft(consultation_id=c.id, source="llm", body=DRAFT, cited_codes=CITED,
                                  model="gpt-4o-mini", confidence=0.82, redacted_question=redacted,
                                  redactions=[{"kind": "age"}, {"kind": "name"}], created_at=now - age / 2))
                for minutes, actor, action in [(int(age.total_seconds() / 60) - 1, "system", "acknowledged"),
                                               (int(age.total_seconds() / 60) - 3, "system", "drafted"),
                                               (20, "maria.lopez@coders.example", "claim")]:
                    session.add(AuditEvent(consultation_id=c.id, actor=actor, action=action,
                                           created_at=now - timedelta(minutes=minutes)))
        session.add(ConsultationNote(consultation_id=featured, author_id=ids[1], created_at=now - timedelta(minutes=40),
                                     body="Ridgeview's payer (Aetna) wants the E/M documentation attached when 25 "
                                          "is used with 20610 - remind them in the answer."))
        session.add(ConsultationNote(consultation_id=featured, author_id=ids[0], created_at=now - timedelta(minutes=9),
                                     body="Checked the NCCI table: indicator 1, so 25 bypasses the edit. Sending."))
        for name, body in MACROS:
            session.add(Macro(name=name, body=body, updated_by_id=ids[0]))
    return featured


MACROS = [
    ("Modifier 25 reminder", "Please keep the E/M note separate from the procedure note: modifier 25 on "
                             "{codes} needs a significant, separately identifiable service."),
    ("Need the date of service", "Hi {asker_first_name}, to check {reference} against the right code-set "
                                 "version we need the date of service. Could you reply with it?"),
    ("Thanks for the follow-up", "Thanks {asker_first_name} - I have added your note to {reference}. "
                                 "{reviewer}, {reviewer_credential}"),
]


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from mailbot.codes.importers import import_sets
    from reviewers.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/shots.db")
        db.upgrade()
        ncci = ROOT / "tests" / "data" / "ncci"
        import_sets(db, source=ROOT / "data" / "codesets", ncci=sorted(ncci.glob("*.txt")),
                    mue=sorted(ncci.glob("*.csv")))
        featured = seed(db)
        settings = load_settings(path=None, environ={}, overrides={
            "service.var_dir": f"{tmp}/var", "database.url": db.url, "service.name": "mailbot",
            "web.session_secret": "screenshots-" + "s" * 40})
        ctx = configure(Context(settings, db=db))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning", lifespan="off"))
        server.install_signal_handlers = lambda: None
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        time.sleep(1.5)
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
            page.goto(base + "/login")
            page.fill("input[name=email]", "maria.lopez@coders.example")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/queue")
            page.screenshot(path=str(ROOT / "docs" / "queue.png"), full_page=False)
            page.goto(f"{base}/consultations/{featured}?q=knee+osteoarthritis#lookup")
            page.locator("details.html summary").click()
            page.evaluate("window.scrollTo(0, 0)")
            page.set_viewport_size({"width": 1440, "height": 1500})
            page.screenshot(path=str(ROOT / "docs" / "detail.png"), full_page=False)
            page.set_viewport_size({"width": 1440, "height": 900})
            page.goto(f"{base}/consultations/{featured}")
            page.select_option("#macro-pick", label="Modifier 25 reminder")
            page.locator("#draft-body").evaluate("el => el.setSelectionRange(el.value.length, el.value.length)")
            page.click("#insert-macro")
            page.locator("#draft-body").evaluate("el => el.scrollTop = el.scrollHeight")
            top = page.evaluate("document.getElementById('draft-meta').getBoundingClientRect().top + window.scrollY")
            box = page.evaluate("(() => { const r = document.getElementById('notes').getBoundingClientRect();"
                                " return {x: r.left, bottom: r.bottom + window.scrollY, width: r.width}; })()")
            page.screenshot(path=str(ROOT / "docs" / "notes.png"), full_page=True, clip={
                "x": box["x"] - 12, "y": top - 50, "width": box["width"] + 24, "height": box["bottom"] - top + 62})
            page.set_viewport_size({"width": 1440, "height": 1300})
            page.click("#preview-send")
            page.wait_for_selector("#preview-text")
            page.screenshot(path=str(ROOT / "docs" / "preview.png"), full_page=False)
            page.set_viewport_size({"width": 1440, "height": 900})
            page.goto(f"{base}/admin/macros")
            page.screenshot(path=str(ROOT / "docs" / "macros.png"), full_page=False)
            browser.close()
        server.should_exit = True
    print("wrote docs/queue.png, detail.png, notes.png, preview.png and macros.png")


if __name__ == "__main__":
    main()
