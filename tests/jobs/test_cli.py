"""``mailbot jobs ...``: import files and feeds, list, approve/expire, and a
digest run from the command line (delivered to the Maildir outbox)."""

from __future__ import annotations

import mailbox

from sqlmodel import select
from typer.testing import CliRunner

from mailbot.models.jobs import Job, JobStatus
from mailbot_cli.main import app
from tests.conftest import DATA_DIR
from tests.jobs.support import active_subscription


def run(db, tmp_path, *args: str):
    env = {"MAILBOT_DATABASE__URL": db.url, "MAILBOT_SERVICE__VAR_DIR": str(tmp_path / "var"),
           "MAILBOT_TEST_DATABASES": None, "COLUMNS": "200", "MAILBOT_TEST_PG_URL": None, "MAILBOT_TEST_REDIS_URL": None}
    result = CliRunner().invoke(app, ["jobs", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_import_list_expire_and_approve(db, tmp_path):
    code, output = run(db, tmp_path, "import", str(DATA_DIR / "jobs" / "jobs.csv"))
    assert code == 0 and "3 created, 0 merged into existing postings, 1 skipped" in output
    assert "record 4: a posting needs a title and an employer" in output
    code, output = run(db, tmp_path, "import-feed", str(DATA_DIR / "jobs" / "feed.rss"))
    assert code == 0 and "2 created" in output
    code, output = run(db, tmp_path, "import", str(tmp_path / "missing.csv"))
    assert code == 1 and "no such file" in output
    code, output = run(db, tmp_path, "list", "--status", "open")
    assert code == 0 and "Remote Outpatient Coder" in output and "Sunbelt" in output
    with db.read() as s:
        first = s.exec(select(Job).order_by(Job.id)).first()
    assert run(db, tmp_path, "expire", str(first.id))[0] == 0
    code, output = run(db, tmp_path, "approve", str(first.id))
    assert code == 1 and "not approved" in output
    with db.read() as s:
        assert s.get(Job, first.id).status == JobStatus.EXPIRED


def test_digest_run_now_sends_from_this_process(db, tmp_path, settings):
    run(db, tmp_path, "import", str(DATA_DIR / "jobs" / "jobs.csv"))
    with db.session() as s:
        active_subscription(s, settings, "casey@example.org", "remote jobs daily")
    code, output = run(db, tmp_path, "digest-run", "--now")
    assert code == 0 and "1 digest(s) due: 1 sent" in output
    [message] = list(mailbox.Maildir(tmp_path / "var" / "outbox"))
    assert message["To"] == "casey@example.org" and message["Subject"].startswith("2 new jobs for you")
    code, output = run(db, tmp_path, "digest-run")
    assert "0 digest(s) due" in output


def test_import_feed_fetches_a_url(db, tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(DATA_DIR / "jobs"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        code, output = run(db, tmp_path, "import-feed", f"{base}/feed.atom")
        assert code == 0 and "1 created" in output
        code, output = run(db, tmp_path, "import-feed", f"{base}/jobposting.html")
        assert code == 0 and "1 created" in output
    finally:
        server.shutdown()
        server.server_close()
    with db.read() as s:
        assert {j.employer for j in s.exec(select(Job)).all()} == {"Rockies Health", "Prairie Health"}
