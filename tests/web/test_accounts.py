"""Reviewer accounts: the service and the `mailbot reviewers` command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mailbot.services import accounts
from tests.web.conftest import PASSWORD


def test_passwords_are_argon2_hashed_and_verified(db):
    with db.session() as session:
        reviewer = accounts.add_reviewer(session, " Eve@Coders.Example ", name="Eve", password=PASSWORD)
    assert reviewer.email == "eve@coders.example"
    assert reviewer.password_hash.startswith("$argon2id$") and PASSWORD not in reviewer.password_hash
    with db.session() as session:
        assert accounts.authenticate(session, "EVE@coders.example", PASSWORD).id == reviewer.id
        assert accounts.authenticate(session, "eve@coders.example", "wrong password") is None
        assert accounts.find(session, "eve@coders.example").last_login_at is not None


def test_bad_accounts_are_refused_with_a_reason(db):
    with db.session() as session:
        accounts.add_reviewer(session, "eve@coders.example", name="Eve", password=PASSWORD)
    cases = [("eve@coders.example", "reviewer", PASSWORD, "already exists"),
             ("not-an-email", "reviewer", PASSWORD, "not an email"),
             ("x@coders.example", "boss", PASSWORD, "role must be"),
             ("x@coders.example", "reviewer", "short", "at least 10")]
    for email, role, password, message in cases:
        with pytest.raises(accounts.AccountError, match=message), db.session() as session:
            accounts.add_reviewer(session, email, name="X", role=role, password=password)


def test_cli_adds_lists_and_disables(web_ctx, tmp_path, monkeypatch, db):
    from mailbot_cli.main import app

    # The CLI reads its settings from the environment, like an operator's shell.
    import os

    for name in [n for n in os.environ if n.startswith("MAILBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MAILBOT_DATABASE__URL", db.url)
    monkeypatch.setenv("MAILBOT_SERVICE__VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("MAILBOT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    runner = CliRunner()
    added = runner.invoke(app, ["reviewers", "add", "fay@coders.example", "--name", "Fay Lin", "--credential", "CPC",
                                "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "added Fay Lin <fay@coders.example> (admin)" in added.output
    monkeypatch.setenv("MAILBOT_REVIEWER_PASSWORD", PASSWORD)
    assert runner.invoke(app, ["reviewers", "add", "gus@coders.example", "--name", "Gus"]).exit_code == 0
    assert "MAILBOT_REVIEWER_PASSWORD" not in os.environ   # taken out before settings are read
    monkeypatch.setenv("MAILBOT_REVIEWER_PASSWORD", PASSWORD)
    duplicate = runner.invoke(app, ["reviewers", "add", "gus@coders.example", "--name", "Gus"])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    listed = runner.invoke(app, ["reviewers", "list"])
    assert "fay@coders.example" in listed.output and "gus@coders.example" in listed.output
    assert runner.invoke(app, ["reviewers", "disable", "gus@coders.example"]).exit_code == 0
    with db.session() as session:
        assert accounts.authenticate(session, "gus@coders.example", PASSWORD) is None
        assert accounts.authenticate(session, "fay@coders.example", PASSWORD).role == "admin"


def test_cli_works_on_a_brand_new_embedded_install(tmp_path, monkeypatch):
    import os

    from mailbot_cli.main import app

    for name in [n for n in os.environ if n.startswith("MAILBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)                      # no config.toml here: embedded defaults
    monkeypatch.setenv("MAILBOT_SERVICE__VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(app, ["reviewers", "add", "first@coders.example", "--name", "First Admin",
                                      "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "mailbot.db").exists()
