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
