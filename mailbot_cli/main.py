"""``mailbot`` -- every sub-command with one line of help.

Configuration errors end the process with one line on stderr naming the key
and where its value came from, and exit status 2.
"""

from __future__ import annotations

import json
import logging
import sys

import typer
from rich.console import Console

from mailbot.config import ConfigError, load_settings, masked
from mailbot.context import Context, configure

app = typer.Typer(
    help="mailbot: email-driven medical coding consultations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

err = Console(stderr=True)


def context(config: str | None = None) -> Context:
    """Load settings (exit 2 with one clear line on error) and install the context."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return configure(Context(settings))


ConfigOption = typer.Option(None, "--config", "-c", help="Path to config.toml (default: $MAILBOT_CONFIG or ./config.toml).")


@config_app.command("show")
def config_show(config: str | None = ConfigOption, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective configuration, secrets masked."""
    data = masked(context(config).settings)
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    for section, values in data.items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {json.dumps(value, default=str)}")
        print()


@db_app.command("upgrade")
def db_upgrade(config: str | None = ConfigOption, revision: str = typer.Argument("heads")) -> None:
    """Apply schema migrations (to all heads by default)."""
    ctx = context(config)
    ctx.db.upgrade(revision)
    print(f"database at {', '.join(sorted(ctx.db.current_revisions()))}")


@db_app.command("current")
def db_current(config: str | None = ConfigOption) -> None:
    """Show the schema revision(s) the database is at."""
    print(", ".join(sorted(context(config).db.current_revisions())) or "(empty database)")


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", help="What changed.")) -> None:
    """Autogenerate a migration from the models (developers)."""
    from mailbot.db import autogenerate_revision

    print(autogenerate_revision(message))


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # migrations and HTTP plumbing are noise at INFO
        for name in ("alembic", "httpx", "dramatiq"):
            logging.getLogger(name).setLevel(logging.WARNING)


Verbose = typer.Option(False, "--verbose", "-v", help="Debug logging.")


@app.command()
def serve(config: str | None = ConfigOption, verbose: bool = Verbose) -> None:
    """Run everything in one process: SMTP listener, web app, worker, IMAP poller."""
    from mailbot_cli import processes

    _logging(verbose)
    processes.serve(context(config))


@app.command()
def smtpd(config: str | None = ConfigOption, verbose: bool = Verbose) -> None:
    """Run only the SMTP (or LMTP) listener."""
    from mailbot_cli import processes

    _logging(verbose)
    processes.run_parts(context(config), smtp=True)


@app.command()
def web(config: str | None = ConfigOption, verbose: bool = Verbose) -> None:
    """Run only the reviewer web app."""
    from mailbot_cli import processes

    _logging(verbose)
    processes.run_parts(context(config), web=True)


@app.command()
def worker(config: str | None = ConfigOption, verbose: bool = Verbose) -> None:
    """Run a queue worker (with the reconciler and scheduler)."""
    from mailbot_cli import processes

    _logging(verbose)
    processes.run_parts(context(config), worker=True)


@app.command()
def imap(config: str | None = ConfigOption, verbose: bool = Verbose) -> None:
    """Run only the IMAP poller."""
    from mailbot_cli import processes

    _logging(verbose)
    processes.run_parts(context(config), imap=True)


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question text (or a command such as 'LOOKUP 50250 J1030')."),
    sender: str = typer.Option(..., "--from", help="Your address; the reply goes there."),
    to: str = typer.Option("", "--to", help="Recipient (default: the ask@ address; use lookup@ for commands)."),
    subject: str = typer.Option("", "--subject", help="Subject (default: the first words of the question)."),
    config: str | None = ConfigOption,
) -> None:
    """Email a question to the running SMTP listener (a first try from the shell)."""
    import smtplib
    from email.message import EmailMessage
    from email.utils import make_msgid

    settings = context(config).settings
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or settings.service_address(settings.service.ask_address)
    msg["Subject"] = subject or " ".join(question.split()[:8])
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    msg.set_content(question)
    host = "127.0.0.1" if settings.smtp.host in ("", "0.0.0.0", "::") else settings.smtp.host
    try:
        with smtplib.SMTP(host, settings.smtp.port, timeout=30) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        err.print(f"[bold red]not sent:[/] {exc} (is `mailbot serve` running on {host}:{settings.smtp.port}?)")
        raise typer.Exit(1) from None
    print(f"sent {msg['Message-ID']} to {msg['To']}")


@app.command()
def outbox(count: int = typer.Option(5, "--count", "-n", help="How many of the newest messages."),
           config: str | None = ConfigOption) -> None:
    """Show the newest mail in the Maildir outbox (embedded mode, no relay)."""
    from email import policy
    from email.parser import BytesParser

    path = context(config).settings.outbox_path
    if not (path / "new").exists():
        print(f"outbox {path} is empty")
        return
    files = sorted((path / "new").iterdir(), key=lambda p: p.stat().st_mtime)[-count:]
    for file in files:
        msg = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        body = msg.get_body(preferencelist=("plain",))
        print(f"--- {file.name}\nFrom: {msg['From']}\nTo: {msg['To']}\nSubject: {msg['Subject']}\n")
        print(body.get_content() if body else "(no text part)")


def _register_subcommands() -> None:
    from mailbot_cli import codes, inbound, jobs, reviewers

    app.add_typer(codes.app, name="codes")
    app.add_typer(inbound.app, name="inbound")
    app.add_typer(reviewers.app, name="reviewers")
    app.add_typer(jobs.app, name="jobs")


_register_subcommands()


def run() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
