"""Consultation emails: subjects, the code table, what is never shown."""

from mailbot.models import Consultation
from mailbot.services.consultation_mail import CPT_LICENCE_NOTE, code_rows, reply_subject


def test_the_reply_subject_keeps_one_prefix_and_one_reference():
    c = Consultation(id=1042, subject="RE: Fwd: re: Knee injection [#Q-1042]", asker_email="a@example.org")
    assert reply_subject(c) == "Re: Knee injection [#Q-1042]"
    assert reply_subject(Consultation(id=7, subject="", asker_email="a@example.org")) == \
        "Re: Your coding question [#Q-7]"


def test_a_cpt_code_without_a_licensed_title_shows_the_licence_note_never_a_descriptor():
    rows = code_rows([
        {"code": "99213", "system": "cpt", "title": "", "status": "unlicensed_descriptor", "ok": True,
         "version": "PFS CY2025"},
        {"code": "E11.99", "system": "", "title": "", "status": "unknown", "ok": False, "version": ""},
        {"code": "J1030", "system": "hcpcs", "title": "Injection, methylprednisolone acetate, 40 mg",
         "status": "ok", "ok": True, "version": "HCPCS 2025-01"},
    ])
    assert rows[0]["title"] == CPT_LICENCE_NOTE and rows[0]["status"].startswith("verified")
    assert rows[1]["status"] == "NOT FOUND in the code sets" and rows[1]["ok"] is False
    assert rows[2]["system"] == "HCPCS Level II" and rows[2]["version"] == "HCPCS 2025-01"


def test_only_a_bare_greeting_or_signature_is_dropped_never_the_answer():
    from mailbot.services.consultation_mail import strip_frame

    assert strip_frame("Hello Casey,\n\nReport 20610.", "Cora Reyes", "mailbot") == "Report 20610."
    assert strip_frame("Dear Dr. Smith,\nUse E11.22.", "Cora Reyes", "mailbot") == "Use E11.22."
    kept = "Hi, yes: report 20610 with 99213-25.\nDocument both."
    assert strip_frame(kept, "Cora Reyes", "mailbot") == kept
    assert strip_frame("hello yes you can\nbill both", "Cora Reyes", "mailbot") == "hello yes you can\nbill both"
    assert strip_frame("Use 20610.\n\nBest regards,\nCora Reyes, CPC\nCertified coder, mailbot",
                       "Cora Reyes", "mailbot") == "Use 20610."
    assert strip_frame("Thanks,\nCora Reyes", "Cora Reyes", "mailbot") == "Thanks,"
    assert strip_frame("Cora Reyes, CPC", "Cora Reyes", "mailbot") == "Cora Reyes, CPC"   # never empty
