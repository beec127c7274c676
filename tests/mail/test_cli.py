"""`mailbot inbound quarantine` / `mailbot inbound replay`, run as the operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailbot.mail import intake
from mailbot.models import InboundMessage
from mailbot.services.inbound import process

MAILBOT = str(Path(sys.executable).with_name("mailbot"))


def run_cli(tmp_path, db, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update({"MAILBOT_DATABASE__URL": db.url, "MAILBOT_SERVICE__VAR_DIR": str(tmp_path / "var"),
                "COLUMNS": "200"})
    return subprocess.run([MAILBOT, *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_an_operator_lists_and_replays_quarantined_mail(ctx, db, tmp_path):
    ctx.settings.guards.trusted_authserv_id = "mx.mailbot.example"
    raw = (b"From: coder@clinic.example\r\nTo: ask@mailbot.localhost\r\nSubject: forwarded by a list\r\n"
           b"Message-ID: <fw1@clinic.example>\r\n\r\nIs 99213 right?\r\n")
    inbound_id = intake.accept(db, raw, source="smtp", envelope_from="coder@clinic.example",
                               envelope_to=["ask@mailbot.localhost"])
    process(ctx, inbound_id)

    listed = run_cli(tmp_path, db, "inbound", "quarantine")
    assert listed.returncode == 0, listed.stderr
    assert "authentication_failed: no Authentication-Results" in listed.stdout and "coder@clinic.example" in listed.stdout

    from mailbot.services.inbound import quarantined

    [item] = quarantined(ctx)
    replayed = run_cli(tmp_path, db, "inbound", "replay", str(item.id), "--now", "--by", "ops@clinic.example")
    assert replayed.returncode == 0, replayed.stderr
    assert f"inbound {inbound_id}: processed (consult)" in replayed.stdout
    with db.read() as session:
        assert session.get(InboundMessage, inbound_id).consultation_id is not None

    again = run_cli(tmp_path, db, "inbound", "replay", str(item.id))
    assert again.returncode == 1 and "already resolved by ops@clinic.example" in again.stderr
    assert quarantined(ctx) == []
