"""`mailbot codes ...` commands."""

import typer

app = typer.Typer(help="codes (see README).", no_args_is_help=True)
