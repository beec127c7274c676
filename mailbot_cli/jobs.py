"""`mailbot jobs ...` commands."""

import typer

app = typer.Typer(help="jobs (see README).", no_args_is_help=True)
