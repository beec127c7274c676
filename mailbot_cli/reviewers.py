"""`mailbot reviewers ...` commands."""

import typer

app = typer.Typer(help="reviewers (see README).", no_args_is_help=True)
