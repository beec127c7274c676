"""The reviewers' lookup page: the same cards as the LOOKUP mail, behind login."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mailbot.context import Context, configure
from reviewers.app import create_app
from tests.conftest import make_settings
from tests.web.conftest import SECRET, add_reviewer, sign_in


@pytest.fixture
def client(tmp_path, codes_db, db):
    ctx = configure(Context(make_settings(tmp_path, db, **{"web.session_secret": SECRET}), db=db))
    with TestClient(create_app(ctx), base_url="http://testserver", follow_redirects=False) as c:
        yield c


@pytest.fixture
def signed_in(client, db):
    sign_in(client, add_reviewer(db, "rita@coders.example", "Rita Reviewer"))
    return client


def test_the_lookup_page_needs_a_login(client):
    response = client.get("/lookup?q=E11.22")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.get("/lookup/cards.css").status_code == 303


def test_codes_show_one_verified_card_each_with_the_code_set_version(signed_in):
    page = signed_in.get("/lookup", params={"q": "e1122 j-1030"})
    assert page.status_code == 200
    html = page.text
    assert "E11.22" in html and "J1030" in html
    assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in html
    assert "ICD-10-CM" in html and "HCPCS" in html
    assert 'class="card card-ok"' in html
    assert "<style" not in html  # the CSP forbids inline styles: the cards use /lookup/cards.css


def test_cpt_codes_say_the_descriptor_needs_a_licence(signed_in):
    html = signed_in.get("/lookup", params={"q": "99213"}).text
    assert "99213" in html and "AMA" in html


def test_unknown_codes_get_suggestions(signed_in):
    html = signed_in.get("/lookup", params={"q": "E11.99"}).text
    assert "not found" in html and "Did you mean" in html


def test_words_search_and_link_each_hit_to_its_card(signed_in):
    html = signed_in.get("/lookup", params={"q": "type 2 diabetes with kidney disease"}).text
    assert "E11.22" in html and "/lookup?q=E11.22" in html


def test_check_mode_shows_validity_and_edits(signed_in):
    html = signed_in.get("/lookup", params={"q": "20610 99213", "mode": "check", "on": "2026-03-01"}).text
    assert "NCCI pair edits" in html and "MUE" in html
    assert "Modifier indicator 1" in html and "Standards of medical / surgical practice" in html


def test_too_many_codes_are_refused_with_the_limit(signed_in):
    codes = " ".join(f"E11.{i}" for i in range(21))
    html = signed_in.get("/lookup", params={"q": codes}).text
    assert "at most 20" in html


def test_the_card_stylesheet_is_scoped_to_the_card_area(signed_in):
    css = signed_in.get("/lookup/cards.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    rules = [line for line in css.text.splitlines() if line.strip()]
    assert rules and all(line.startswith(".cmd-cards ") for line in rules)


def test_the_mail_syntax_works_in_the_lookup_box(signed_in):
    """Issue 15: "CHECK 20610 99213" searched the word "check"."""
    checked = signed_in.get("/lookup", params={"q": "CHECK 20610 99213", "on": "2026-03-01"}).text
    assert "NCCI pair edits" in checked and "Modifier indicator 1" in checked
    looked = signed_in.get("/lookup", params={"q": "lookup e1122"}).text
    assert "Type 2 diabetes mellitus with diabetic chronic kidney disease" in looked
    searched = signed_in.get("/lookup", params={"q": "SEARCH type 2 diabetes with kidney disease"}).text
    assert "/lookup?q=E11.22" in searched
    # A bare verb is a word to search, not an empty command.
    assert signed_in.get("/lookup", params={"q": "check"}).status_code == 200
