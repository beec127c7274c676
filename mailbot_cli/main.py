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


def _register_subcommands() -> None:
    from mailbot_cli import codes, jobs, reviewers

    app.add_typer(codes.app, name="codes")
    app.add_typer(reviewers.app, name="reviewers")
    app.add_typer(jobs.app, name="jobs")


_register_subcommands()


def run() -> None:
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]config error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
