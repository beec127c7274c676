"""``python -m mailbot_cli`` is the ``mailbot`` command."""

from mailbot_cli.main import run

run()
