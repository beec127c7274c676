"""`mailbot codes ...` end to end: JSON arrays on stdout, clear errors, non-zero exits."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from mailbot_cli.main import app
from tests.codes.conftest import NCCI_DIR


@pytest.fixture
def run(codes_db, db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.toml
    for name in [n for n in os.environ if n.startswith("MAILBOT_")]:
        monkeypatch.delenv(name)  # e.g. MAILBOT_TEST_DATABASES is not a setting
    env = {"MAILBOT_DATABASE__URL": db.url, "MAILBOT_SERVICE__VAR_DIR": str(tmp_path / "var")}
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["codes", *args], env=env)

    return invoke


def test_lookup_json_is_an_array_in_input_order(run):
    result = run("lookup", "e11.22", "J-1030", "99213", "--date", "2026-11-02", "--json")
    assert result.exit_code == 0, result.output
    cards = json.loads(result.stdout)
    assert [c["code"] for c in cards] == ["E11.22", "J1030", "99213"]
    assert cards[2]["title"] is None and cards[2]["licence_note"]


def test_lookup_of_an_unknown_code_exits_1_with_suggestions(run):
    result = run("lookup", "E11.99", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)[0]["suggestions"]


def test_search_json_and_empty_query(run):
    result = run("search", "heart attack", "--limit", "3", "--json")
    assert result.exit_code == 0
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and {"code", "system", "title", "score"} <= set(hits[0])
    empty = run("search", "  ")
    assert empty.exit_code == 1 and "empty search" in empty.stderr


def test_check_json_and_bad_date(run):
    result = run("check", "20610", "99213-25", "--date", "2026-03-02", "--json")
    assert result.exit_code == 0
    [report] = json.loads(result.stdout)
    assert report["pairs"][0]["column1"] == "20610"
    bad = run("check", "20610", "--date", "03/02/2026")
    assert bad.exit_code == 1 and "not a date" in bad.stderr
    unknown = run("check", "20610", "E11.99", "--json")
    assert unknown.exit_code == 1 and json.loads(unknown.stdout)[0]["codes"][1]["status"] == "unknown"


def test_versions_json(run):
    result = run("versions", "--json")
    assert result.exit_code == 0
    kinds = {v["kind"] for v in json.loads(result.stdout)}
    assert {"icd10cm", "hcpcs", "pfs", "ncci", "mue"} <= kinds


def test_import_of_a_wrong_file_fails_clearly_and_changes_nothing(run, tmp_path):
    before = json.loads(run("versions", "--json").stdout)
    result = run("import", "--mue", str(NCCI_DIR / "ccipra_v321r0_f1_practitioner.txt"))
    assert result.exit_code == 1
    assert "not a CMS MUE file" in result.stderr and "nothing of that code set was imported" in result.stderr
    assert json.loads(run("versions", "--json").stdout) == before


def test_reimport_reports_already_loaded(run):
    result = run("import")
    assert result.exit_code == 0 and "already loaded" in result.stdout
