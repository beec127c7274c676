"""A service a test starts dies with the test process, even when that one is killed.

The signal comes when the *thread* that started the child ends, so services are started from the
test's own thread (every caller of ``die_with_parent`` is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dead, not yet reaped by init) counts as gone
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(")")[-1].split()[0] != "Z"


def test_a_child_started_with_die_with_parent_ends_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # the "test run": starts a long-lived service the way the tests do, then waits forever
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import subprocess, sys, time
        from tests.support.children import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                 preexec_fn=die_with_parent(), start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(120)
        """)], cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)  # no finally, no atexit: the way a killed run ends
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_die_with_parent_runs_the_other_preexec_too(tmp_path):
    from tests.support.children import die_with_parent

    marker = tmp_path / "ran"
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpgid(0) == os.getpid())"],
                         preexec_fn=die_with_parent(lambda: marker.write_text("yes")), start_new_session=True,
                         capture_output=True, text=True, check=True)
    assert marker.read_text() == "yes" and out.stdout.strip() == "True"
