"""`mailbot reviewers ...`: manage reviewer accounts.

    mailbot reviewers add ana@example.org --name "Ana Ruiz" --credential CPC --role reviewer
    mailbot reviewers list
    mailbot reviewers disable ana@example.org

The password is asked for at the prompt (twice, hidden); scripts pass it on
stdin with ``--password-stdin`` or in ``MAILBOT_REVIEWER_PASSWORD``.  It is
never a command-line argument, where it would show up in ``ps`` and shell
history.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.table import Table

from mailbot.services import accounts

app = typer.Typer(help="Reviewer accounts: add, list, disable.", no_args_is_help=True)
PASSWORD_ENV = "MAILBOT_REVIEWER_PASSWORD"
err = Console(stderr=True)


def _context(config: str | None):
    """Settings and database, ready: an embedded SQLite file is created and
    migrated on first use (so accounts can be added before the first
    ``serve``); a shared database must already be at the current schema."""
    from mailbot_cli.main import context
    from mailbot_cli.processes import prepare_database

    ctx = context(config)
    prepare_database(ctx)
    return ctx


ConfigOption = typer.Option(None, "--config", "-c", help="Path to config.toml.")


def _take_env_password() -> str | None:
    """Remove the password variable from the environment before settings are
    loaded (MAILBOT_* names are read as settings) and so no child sees it."""
    return os.environ.pop(PASSWORD_ENV, None)


def _password(from_stdin: bool, from_env: str | None) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if from_env:
        return from_env
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("add")
def add(
    email: str = typer.Argument(..., help="Login email."),
    name: str = typer.Option(..., "--name", help="Name shown to other reviewers."),
    credential: str = typer.Option("", "--credential", help="CPC, CCS, CCS-P, …"),
    role: str = typer.Option("reviewer", "--role", help="reviewer or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    config: str | None = ConfigOption,
) -> None:
    """Create a reviewer account."""
    from_env = _take_env_password()
    ctx = _context(config)
    password = _password(password_stdin, from_env)
    try:
        with ctx.db.session() as session:
            reviewer = accounts.add_reviewer(session, email, name=name, credential=credential, role=role,
                                             password=password)
            label = f"{reviewer.name} <{reviewer.email}> ({reviewer.role})"
    except accounts.AccountError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    print(f"added {label}")


@app.command("list")
def list_(config: str | None = ConfigOption) -> None:
    """List accounts."""
    _take_env_password()
    ctx = _context(config)
    with ctx.db.read() as session:
        people = accounts.list_reviewers(session)
    table = Table("email", "name", "credential", "role", "status", "last login")
    for p in people:
        table.add_row(p.email, p.name, p.credential, p.role, "active" if p.active else "disabled",
                      p.last_login_at.strftime("%Y-%m-%d %H:%M") if p.last_login_at else "")
    Console(width=160).print(table)


@app.command("disable")
def disable(email: str = typer.Argument(...), config: str | None = ConfigOption) -> None:
    """Disable an account (its sessions stop working at once)."""
    _take_env_password()
    ctx = _context(config)
    try:
        with ctx.db.session() as session:
            accounts.disable(session, email)
    except accounts.AccountError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    print(f"disabled {accounts.normalize_email(email)}")
