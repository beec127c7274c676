"""`mailbot serve`: one process, no other server, answers on SMTP and HTTP."""

import os
import signal
import smtplib
import subprocess
import sys
import urllib.request

from tests.conftest import RUN_ID, _create_pg_database, _drop_pg_database
from tests.support.children import die_with_parent
from tests.support.net import free_port, wait_for_port


def _start(tmp_path, extra_env=None):
    smtp_port, web_port = free_port(), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")},
           "MAILBOT_SMTP__PORT": str(smtp_port), "MAILBOT_WEB__PORT": str(web_port),
           "MAILBOT_SERVICE__VAR_DIR": str(tmp_path / "var"), "MAILBOT_CODES__LOAD_ON_SERVE": "false",
           **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "mailbot_cli", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())
    return proc, smtp_port, web_port


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode(errors="replace")
    return out


def test_serve_answers_on_smtp_and_http_with_embedded_defaults(tmp_path):
    proc, smtp_port, web_port = _start(tmp_path)
    try:
        wait_for_port(smtp_port, timeout=60, process=proc)
        wait_for_port(web_port, timeout=60, process=proc)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            code, _ = smtp.ehlo("client.example")
            assert code == 250
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert (tmp_path / "var" / "mailbot.db").exists()


def test_serve_refuses_an_unmigrated_shared_database(tmp_path):
    """A shared PostgreSQL is migrated by the operator (`mailbot db upgrade`),
    never behind their back by whichever process starts first."""
    name = f"mailbot_{RUN_ID}_unmigrated"
    url = _create_pg_database(name)
    try:
        proc, _, _ = _start(tmp_path, {"MAILBOT_DATABASE__URL": url})
        output = proc.communicate(timeout=60)[0].decode(errors="replace")
    finally:
        _drop_pg_database(name)
    assert proc.returncode != 0
    assert "mailbot db upgrade" in output


def test_a_bad_config_value_stops_serve_with_one_line(tmp_path):
    proc, _, _ = _start(tmp_path, {"MAILBOT_SMTP__MAX_MESSAGE_SIZE": "ten megabytes"})
    output = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 2
    assert "smtp.max_message_size" in output and "MAILBOT_SMTP__MAX_MESSAGE_SIZE" in output
