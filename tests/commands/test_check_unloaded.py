"""CHECK on a service without NCCI/MUE tables says "not checked", never
"no edits" -- the two must not read the same."""

from __future__ import annotations

from mailbot.commands import runner
from tests.commands.support import bodies, parsed, replies, routed_command


def test_without_ncci_tables_check_says_pairs_were_not_checked(fresh_db, tmp_path):
    from mailbot.codes.importers import import_sets
    from mailbot.config import REPO_ROOT
    from mailbot.context import Context, configure
    from tests.conftest import make_settings

    import_sets(fresh_db, source=REPO_ROOT / "data" / "codesets", kinds=("pfs",))  # CPT numbers only: fast
    bare = configure(Context(make_settings(tmp_path, fresh_db), db=fresh_db))
    inbound_id = routed_command(fresh_db, "CHECK 20610 99213", "")
    runner.run(bare, inbound_id)
    text, html = bodies(parsed(replies(fresh_db, inbound_id)[0]))
    assert "NOT CHECKED: the NCCI practitioner edits are not loaded" in text
    assert "NOT CHECKED: the MUE practitioner table is not loaded" in text
    assert "No NCCI edit pairs" not in text and "Not checked" in html


def test_practitioner_check_says_the_practitioner_table_decides(fresh_db, tmp_path):
    """With only the hospital table loaded, 20610 + 99213 for a practitioner is NOT checked."""
    from mailbot.codes.importers import import_sets
    from mailbot.config import REPO_ROOT
    from mailbot.context import Context, configure
    from tests.conftest import make_settings

    import_sets(fresh_db, source=REPO_ROOT / "data" / "codesets", kinds=("pfs", "addon"))
    bare = configure(Context(make_settings(tmp_path, fresh_db), db=fresh_db))
    inbound_id = routed_command(fresh_db, "CHECK 20610 99213", "")
    runner.run(bare, inbound_id)
    text, _ = bodies(parsed(replies(fresh_db, inbound_id)[0]))
    flat = " ".join(text.split())
    assert "NCCI pairs: NOT CHECKED, the practitioner table is not loaded" in flat
    assert "The practitioner PTP table decides for a practitioner claim" in flat
