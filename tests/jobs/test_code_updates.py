"""Code-update digests: when a new code-set version is imported, subscribers
get the added, revised and deleted codes in their ranges ("chapter 4",
"E08-E13", "J codes"), once per version.

The code rows are the FY2026 -> FY2027 ICD-10-CM changes as the code
knowledge base stores them (a closing row on 2026-09-30, an opening row on
2026-10-01), taken from the shipped addenda, in a database of their own
(reference tables are shared by the whole test session otherwise).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from mailbot.context import Context
from mailbot.jobs import code_updates, digest
from mailbot.models.codes import CodeEntry, CodeSetVersion
from mailbot.models.jobs import DigestRun, DigestState
from mailbot.models.mail import OutboundMessage
from tests.conftest import TESTS_DIR, make_settings
from tests.jobs.digest_support import parsed_text
from tests.jobs.support import active_subscription

FY26, FY27 = date(2025, 10, 1), date(2026, 10, 1)
DATA_ROOT = TESTS_DIR.parent / "data" / "codesets"
END26 = date(2026, 9, 30)
T_BASE = datetime(2026, 4, 1, tzinfo=UTC)
T_SUBSCRIBED = datetime(2026, 9, 1, tzinfo=UTC)
T_ADDENDA = datetime(2026, 9, 15, tzinfo=UTC)


@pytest.fixture
def code_ctx(fresh_db, tmp_path):
    """Two ICD-10-CM versions with real FY2027 changes, in a fresh database."""
    with fresh_db.session() as s:
        base = CodeSetVersion(kind="icd10cm", version="FY2026 (April 2026)", source="simple-icd-10-cm 1.5.0",
                              effective_from=FY26, checksum="a" * 64, imported_at=T_BASE)
        addenda = CodeSetVersion(kind="icd10cm", version="FY2027", source="icd10cm-fy2027 addenda",
                                 effective_from=FY27, checksum="b" * 64, imported_at=T_ADDENDA)
        s.add_all([base, addenda])
        s.flush()

        def row(code, title, version, start, end=None, billable=True):
            s.add(CodeEntry(system="icd10cm", code=code, title=title, billable=billable, valid_from=start,
                            valid_to=end, version_id=version.id))

        row("E11.9", "Type 2 diabetes mellitus without complications", base, FY26)          # unchanged
        row("E89.83", "Postprocedural hypoglycemia following a procedure", addenda, FY27, billable=False)
        row("E89.830", "Post bariatric hypoglycemia", addenda, FY27)
        row("J34.830", "Odontogenic sinusitis, maxillary sinus", addenda, FY27)
        row("I42.0", "Dilated cardiomyopathy", base, FY26, END26)                           # billable -> header
        row("I42.0", "Dilated cardiomyopathy", addenda, FY27, billable=False)
        row("L02.232", "Carbuncle of back [any part, except buttock]", base, FY26, END26)   # revised title
        row("L02.232", "Carbuncle of back [any part, except buttock and flank]", addenda, FY27)
        row("S23.420A", "Sprain of sternoclavicular (joint) (ligament), initial encounter", base, FY26, END26)
    context = Context(make_settings(tmp_path, fresh_db), db=fresh_db)
    with fresh_db.read() as s:
        context.addenda_id = s.exec(select(CodeSetVersion.id).where(CodeSetVersion.version == "FY2027")).one()
        context.base_id = s.exec(select(CodeSetVersion.id).where(CodeSetVersion.version != "FY2027")).one()
    return context


def test_changes_of_a_version_are_derived_from_the_validity_intervals(code_ctx):
    with code_ctx.db.read() as s:
        changes = code_updates.changes_for_version(s, code_ctx.addenda_id)
        assert code_updates.changes_for_version(s, code_ctx.base_id) == []      # a first import is no "change"
    summary = [(c.change, c.code) for c in changes]
    assert summary == [("added", "E89.83"), ("added", "E89.830"), ("added", "J34.830"),
                       ("deleted", "S23.420A"), ("revised", "I42.0"), ("revised", "L02.232")]
    revised = {c.code: c for c in changes if c.change == "revised"}
    assert revised["L02.232"].previous == "Carbuncle of back [any part, except buttock]"
    assert revised["I42.0"].previous == "billable until 2026-09-30"


@pytest.mark.parametrize("code, system, criteria, expected", [
    ("E11.65", "icd10cm", {"ranges": [["E08", "E13"]]}, True),
    ("E13.9", "icd10cm", {"ranges": [["E08", "E13"]]}, True),
    ("E89.830", "icd10cm", {"ranges": [["E08", "E13"]]}, False),
    ("J1030", "hcpcs", {"prefixes": ["J"]}, True),
    ("J34.830", "icd10cm", {"prefixes": ["J"], "systems": ["hcpcs"]}, False),
    ("E89.830", "icd10cm", {}, True),
])
def test_scope(code, system, criteria, expected):
    assert code_updates.in_scope(code, system, criteria) is expected


def test_each_subscriber_gets_the_changes_in_their_ranges_once(code_ctx):
    ctx = code_ctx
    with ctx.db.session() as s:
        chapter4 = active_subscription(s, ctx.settings, "endo@example.org", "UPDATES chapter 4", now=T_SUBSCRIBED)
        j_codes = active_subscription(s, ctx.settings, "ent@example.org", "UPDATES J codes", now=T_SUBSCRIBED)
        diabetes = active_subscription(s, ctx.settings, "dm@example.org", "UPDATES E08-E13", now=T_SUBSCRIBED)
        late = active_subscription(s, ctx.settings, "late@example.org", "UPDATES", now=T_ADDENDA + timedelta(days=1))
        run_ids = code_updates.claim_runs(s, ctx.addenda_id)
        assert code_updates.claim_runs(s) == []                    # once per version and subscription
    with ctx.db.read() as s:
        runs = {r.subscription_id: r for r in s.exec(select(DigestRun)).all()}
    assert set(runs) == {chapter4.id, j_codes.id, diabetes.id} and late.id not in runs
    assert {sub_id: r.period_key for sub_id, r in runs.items()} == {
        sub_id: f"codes:{ctx.addenda_id}/S-{sub_id}" for sub_id in runs}
    assert all(r.subscriber_id == s_.subscriber_id for s_ in (chapter4, j_codes, diabetes) for r in [runs[s_.id]])
    sent = {}
    for run_id in run_ids:
        for poke in digest.send_digest(ctx, run_id):
            with ctx.db.read() as s:
                out = s.get(OutboundMessage, poke.id)
                sent[out.to_addr] = out
        assert digest.send_digest(ctx, run_id) == []
    assert set(sent) == {"endo@example.org", "ent@example.org"}    # nothing in E08-E13 changed: no email
    with ctx.db.read() as s:
        assert s.get(DigestRun, runs[diabetes.id].id).state == DigestState.SKIPPED
    subject, text = parsed_text(sent["endo@example.org"].raw)
    assert subject == "Code-set update FY2027: 2 changes in E00-E89"
    assert "E89.830  Post bariatric hypoglycemia" in text and "J34" not in text and "effective 2026-10-01" in text
    subject, text = parsed_text(sent["ent@example.org"].raw)
    assert subject == "Code-set update FY2027: 1 change in J codes" and "J34.830" in text


def test_the_shipped_fy2027_import_yields_the_addenda_as_changes(codes_db, db):
    """Against the code knowledge base's real import of FY2026 + FY2027."""
    import csv

    addenda = DATA_ROOT / "icd10cm-fy2027"

    def codes(name: str) -> set[str]:
        with open(addenda / name, newline="", encoding="utf-8") as fh:
            return {row["codeDotted"] for row in csv.DictReader(fh)}

    with db.read() as s:
        fy2027 = s.exec(select(CodeSetVersion).where(CodeSetVersion.kind == "icd10cm",
                                                     CodeSetVersion.effective_from == FY27)).one()
        changes = code_updates.changes_for_version(s, fy2027.id)
    by_kind: dict[str, set[str]] = {}
    for change in changes:
        by_kind.setdefault(change.change, set()).add(change.code)
    assert by_kind["added"] == codes("added.csv")
    assert by_kind["deleted"] == codes("deleted.csv")
    assert by_kind["revised"] == codes("revised.csv") | codes("billable-status-changes.csv")
    in_chapter_4 = sorted(c.code for c in changes if code_updates.in_scope(c.code, c.system, {"ranges": [["E00", "E89"]]}))
    assert in_chapter_4 == ["E89.83", "E89.830", "E89.838"]
