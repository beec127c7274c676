"""Full-text search in the queue (issue 15): a code or words from the
question body, a draft or the sent answer find the consultation, combined
with the queue's filters; the index follows edits; odd input is plain text."""

from __future__ import annotations

from sqlmodel import select

from mailbot.models import Consultation, Draft
from tests.web.conftest import seed_consultation, sign_in


def _refs(page: str) -> set[str]:
    import re

    return set(re.findall(r'href="/consultations/(\d+)"', page))


def test_a_code_in_the_question_body_finds_the_item(client, db, alice):
    hit = seed_consultation(db, subject="Knee question", text="Can we bill 20610 with 99213-25 for the left knee?")
    miss = seed_consultation(db, subject="Diabetes", text="Which code for E11.22 with N18.31?", draft="Use E11.22.",
                             cited=[{"code": "E11.22"}])
    sign_in(client, alice)
    assert _refs(client.get("/queue", params={"q": "20610"}).text) == {str(hit)}
    assert _refs(client.get("/queue", params={"q": "E11.22"}).text) == {str(miss)}
    assert _refs(client.get("/queue", params={"q": "injections knee"}).text) == set()   # every word must match
    assert _refs(client.get("/queue", params={"q": "left knee"}).text) == {str(hit)}


def test_drafts_and_answers_are_searched_and_the_index_follows_edits(client, db, alice):
    cid = seed_consultation(db, subject="Question", text="Short question.", draft="Nothing special.",
                            claimed_by=alice.id, cited=[])
    token = sign_in(client, alice)
    assert _refs(client.get("/queue", params={"q": "arthrocentesis"}).text) == set()
    with db.read() as session:
        version = session.get(Consultation, cid).version
    client.post(f"/consultations/{cid}/save", data={"body": "Report the arthrocentesis once.", "version": version,
                                                    "csrf_token": token})
    assert _refs(client.get("/queue", params={"q": "arthrocentesis"}).text) == {str(cid)}


def test_search_combines_with_the_filters(client, db, alice, bob):
    mine = seed_consultation(db, text="Ultrasound guidance 76942.", claimed_by=alice.id)
    seed_consultation(db, text="Ultrasound guidance 76942.", claimed_by=bob.id)
    sign_in(client, alice)
    assert _refs(client.get("/queue", params={"q": "76942", "assignee": "me"}).text) == {str(mine)}


def test_fts_operators_and_quotes_are_plain_text(client, db, alice):
    seed_consultation(db, text="Plain question about 20610.")
    sign_in(client, alice)
    for q in ['"', 'NEAR(a b)', '20610 OR *', "a AND -", "' ; DROP TABLE consultation; --", "E11.", "*"]:
        response = client.get("/queue", params={"q": q})
        assert response.status_code == 200, q
    with db.read() as session:
        assert session.exec(select(Consultation)).first() is not None
