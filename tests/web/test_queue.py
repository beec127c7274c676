"""The queue page: order, filters, counts, search, paging, and a fixed
number of queries however many rows there are."""

from __future__ import annotations

import re

from sqlalchemy import event

from mailbot.models import ConsultationState
from tests.web.conftest import seed_consultation, sign_in


def _refs(html: str) -> list[str]:
    return re.findall(r'<td><a href="/consultations/\d+">(Q-\d+)</a></td>', html)


def test_awaiting_review_is_listed_oldest_first_with_late_items_marked(client, db, alice, web_ctx):
    sla = web_ctx.settings.web.sla_hours
    new = seed_consultation(db, subject="new one", age_hours=1)
    old = seed_consultation(db, subject="old one", age_hours=sla + 5)
    seed_consultation(db, subject="already sent", state=ConsultationState.SENT, age_hours=100)
    sign_in(client, alice)
    page = client.get("/queue").text
    assert _refs(page) == [f"Q-{old}", f"Q-{new}"]
    assert page.count('class="late"') == 1
    assert "already sent" not in page


def test_counts_per_state_are_shown(client, db, alice):
    for _ in range(3):
        seed_consultation(db)
    seed_consultation(db, state=ConsultationState.NEEDS_INFO)
    sign_in(client, alice)
    page = client.get("/queue").text
    assert re.search(r'<span class="n">3</span> awaiting review', page)
    assert re.search(r'<span class="n">1</span> needs info', page)


def test_filters_by_assignee_system_flags_and_state(client, db, alice, bob):
    mine = seed_consultation(db, subject="mine", claimed_by=alice.id, systems=["icd10cm"])
    bobs = seed_consultation(db, subject="bobs", claimed_by=bob.id, flags=2)
    free = seed_consultation(db, subject="free", systems=["cpt", "hcpcs"])
    info = seed_consultation(db, subject="info", state=ConsultationState.NEEDS_INFO)
    sign_in(client, alice)
    assert _refs(client.get("/queue?assignee=me").text) == [f"Q-{mine}"]
    assert _refs(client.get("/queue?assignee=none").text) == [f"Q-{free}"]
    assert _refs(client.get(f"/queue?assignee={bob.id}").text) == [f"Q-{bobs}"]
    assert _refs(client.get("/queue?flagged=1").text) == [f"Q-{bobs}"]
    assert _refs(client.get("/queue?system=icd10cm").text) == [f"Q-{mine}"]
    assert _refs(client.get("/queue?system=hcpcs").text) == [f"Q-{free}"]
    assert _refs(client.get("/queue?state=needs_info").text) == [f"Q-{info}"]
    assert len(_refs(client.get("/queue?state=all").text)) == 4


def test_search_box_finds_subject_asker_and_reference(client, db, alice):
    a = seed_consultation(db, subject="Diabetes with CKD stage 3a")
    b = seed_consultation(db, subject="Knee injection", asker="billing@ortho.example")
    sign_in(client, alice)
    assert _refs(client.get("/queue?q=ckd").text) == [f"Q-{a}"]
    assert _refs(client.get("/queue?q=ortho.example").text) == [f"Q-{b}"]
    assert _refs(client.get(f"/queue?q=Q-{b}").text) == [f"Q-{b}"]
    assert _refs(client.get("/queue?q=100%25").text) == []   # LIKE wildcards are literal


def test_pages_and_bad_parameters(client, db, alice, web_ctx):
    size = web_ctx.settings.web.page_size
    for i in range(size + 3):
        seed_consultation(db, subject=f"item {i}", age_hours=1000 - i, draft=None)
    sign_in(client, alice)
    first = client.get("/queue").text
    assert len(_refs(first)) == size and f"1–{size} of {size + 3}" in first
    assert len(_refs(client.get("/queue?page=2").text)) == 3
    assert client.get("/queue?page=abc&state=bogus&assignee=x;drop").status_code == 200


def test_queue_query_count_does_not_grow_with_rows(client, db, alice, bob):
    sign_in(client, alice)

    def statements_for_page() -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        engines = {db.engine, db.read_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/queue?state=all").status_code == 200
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    seed_consultation(db, claimed_by=bob.id)
    few = statements_for_page()
    for _ in range(15):
        seed_consultation(db, claimed_by=bob.id)
    assert statements_for_page() == few
