"""A throw-away Dovecot IMAP server for tests (Debian ``dovecot-imapd``).

Started with its own configuration in a temporary directory, listening on a
free loopback port, one passwd-file user with a Maildir.  Never skips: when
Dovecot is not installed the test fails and says how to install it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.children import die_with_parent

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailbot-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
shutdown_clients = yes
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service auth {{
  user = root
}}
service auth-worker {{
  user = root
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    user: str
    password: str
    process: subprocess.Popen

    def stop(self, remove: bool = False) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        """Start again on the same port after :meth:`stop` (the mail stays)."""
        self.process = _launch(self.root, self.port)

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / self.user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dovecot(user: str = "ask@mailbot.localhost", password: str = "secret") -> Dovecot:
    """Start a server; call ``.stop()`` (which also removes its directory)."""
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is not installed: apt-get install -y dovecot-imapd (the IMAP tests need a real server)")
    # Dovecot never runs a mailbox process as root: mail belongs to "nobody",
    # so every directory on the way must be traversable.  pytest's own tmp
    # directories are 0700 (and reset by every other pytest run), hence /tmp.
    root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-"))
    root.chmod(0o755)
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir(exist_ok=True)
    for sub in ("mail", "home"):
        os.chown(root / sub, uid, gid)
    port = free_port()
    (root / "passwd").write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{root}/home/{user}\n")
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(root=root, port=port, uid=uid, gid=gid))
    return Dovecot(root=root, port=port, user=user, password=password, process=_launch(root, port))


def _launch(root: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([DOVECOT, "-c", str(root / "dovecot.conf"), "-F"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=die_with_parent())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode(errors="replace") if process.stdout else ""
            log = (root / "dovecot.log").read_text(errors="replace") if (root / "dovecot.log").exists() else ""
            pytest.fail(f"dovecot exited with {process.returncode}: {out}\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(100).startswith(b"* OK"):
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail(f"dovecot did not answer on 127.0.0.1:{port} within 15 s; log: {root / 'dovecot.log'}")
