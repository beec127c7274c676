"""`mailbot codes ...`: import the code sets, look up, search, check, list versions.

    mailbot codes import [--source DIR] [--ncci FILE]... [--mue FILE]... [--cpt FILE] [--index FILE]...
    mailbot codes lookup E11.22 j1030 99213-25 [--date 2026-10-01] [--json]
    mailbot codes search "sugar diabetes with kidney disease" [--system icd10cm] [--limit 10] [--json]
    mailbot codes check 20610 99213-25 [--date ...] [--setting practitioner|hospital] [--json]
    mailbot codes versions [--json]

``--json`` prints a JSON array on stdout.  Bad input (unknown code, empty
query, a malformed file) prints one clear line on stderr; the exit status is
1 (2 for configuration errors).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Code sets: import, lookup, search, check (NCCI/MUE), versions.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ConfigOption = typer.Option(None, "--config", "-c", help="Path to config.toml.")
JsonOption = typer.Option(False, "--json", help="Print a JSON array on stdout.")
DateOption = typer.Option(None, "--date", help="Date of service, YYYY-MM-DD (default: today).")


def _context(config: str | None):
    from mailbot_cli.main import context

    return context(config)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"--date {value!r} is not a date (YYYY-MM-DD)")


def _print_json(items: list) -> None:
    print(json.dumps(items, indent=2, default=str))


def _loaded_session(ctx):
    """A read session on a database that has code sets, or a clear error."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from mailbot.codes import versions

    try:
        with ctx.db.read() as session:
            loaded = versions(session)
    except (OperationalError, ProgrammingError):
        _fail("the database has no code tables: run `mailbot db upgrade` and `mailbot codes import`")
    if not loaded:
        _fail("no code sets are loaded: run `mailbot codes import`")
    return ctx.db.read()


@app.command("import")
def import_(
    source: Path = typer.Option(None, "--source", help="Folder of shipped code sets (default: codes.data_dir)."),
    ncci: list[Path] = typer.Option([], "--ncci", help="NCCI PTP table (tab-delimited CMS text); repeatable."),
    mue: list[Path] = typer.Option([], "--mue", help="MUE table (CMS CSV); repeatable."),
    cpt: Path = typer.Option(None, "--cpt", help="Licensed CPT file: CODE<TAB>DESCRIPTOR or CODE,DESCRIPTOR."),
    setting: str = typer.Option(None, "--ncci-setting", help="practitioner|hospital when file names do not say."),
    index: list[Path] = typer.Option([], "--index", help="CMS icd10cm_index/_drug/_neoplasm_YYYY.xml; repeatable."),
    config: str | None = ConfigOption,
) -> None:
    """Import the shipped code sets and any operator files (idempotent)."""
    from mailbot.codes.importers import CodeImportError, import_sets

    from mailbot_cli.processes import prepare_database

    ctx = _context(config)
    try:
        prepare_database(ctx)  # SQLite is upgraded in place; a shared database must be current
    except SystemExit as exc:
        _fail(str(exc))
    source = source or ctx.settings.codes.data_dir
    columns = (TextColumn("{task.description:28}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        tasks: dict[str, int] = {}

        def report(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total or None)
            progress.update(tasks[label], completed=done, total=total or None)

        try:
            results = import_sets(ctx.db, source=Path(source), ncci=ncci, mue=mue, cpt=cpt,
                                  ncci_setting=setting, progress=report, index=index)
        except CodeImportError as exc:
            progress.stop()
            _fail(f"{exc} (nothing of that code set was imported)")
        for task in tasks.values():
            task_obj = progress.tasks[task]
            progress.update(task, total=task_obj.completed or 1, completed=task_obj.completed or 1)
    table = Table(title="Code sets")
    for col in ("set", "version", "setting", "rows", "seconds", "result"):
        table.add_column(col)
    for r in results:
        table.add_row(r.kind, r.version, r.setting, f"{r.rows:,}" if not r.skipped else "-", f"{r.seconds:.1f}",
                      "already loaded" if r.skipped else "imported")
    out.print(table)


@app.command()
def lookup(codes: list[str] = typer.Argument(..., help="Codes as typed: e11.22 E1122 J-1030 99213-25"),
           on: str = DateOption, as_json: bool = JsonOption, config: str | None = ConfigOption) -> None:
    """Look codes up: title, billable, validity on the date, notes, RVUs, NCCI, MUE."""
    from mailbot.codes.lookup import lookup as do_lookup

    ctx = _context(config)
    when = _date(on)
    with _loaded_session(ctx) as session:
        cards = do_lookup(session, codes, when)
    if as_json:
        _print_json([c.to_dict() for c in cards])
    else:
        table = Table()
        for col in ("input", "code", "system", "status", "title", "version"):
            table.add_column(col)
        for c in cards:
            table.add_row(c.input, c.code, c.system or "-", c.status, c.title or (c.licence_note and "(AMA-licensed)")
                          or "-", c.version or "-")
        out.print(table)
        for c in cards:
            if c.suggestions:
                out.print(f"{c.code}: did you mean " + ", ".join(s["code"] for s in c.suggestions) + "?")
    if any(not c.found for c in cards):
        raise typer.Exit(1)


@app.command()
def search(query: str = typer.Argument(..., help="Words, abbreviations or a code prefix."),
           system: str = typer.Option(None, "--system", help="icd10cm, hcpcs or cpt"),
           limit: int = typer.Option(10, "--limit", min=1, max=200), as_json: bool = JsonOption,
           config: str | None = ConfigOption) -> None:
    """Search codes by meaning (lay words, synonyms, typos, code prefixes)."""
    from mailbot.codes.search import SearchError
    from mailbot.codes.search import search as do_search

    ctx = _context(config)
    with _loaded_session(ctx) as session:
        try:
            hits = do_search(session, query, system=system, limit=limit)
        except SearchError as exc:
            _fail(str(exc))
    if as_json:
        _print_json([h.to_dict() for h in hits])
        return
    table = Table()
    for col in ("code", "system", "title", "score"):
        table.add_column(col)
    for h in hits:
        table.add_row(h.code, h.system, h.title, f"{h.score:.2f}")
    out.print(table)


@app.command()
def check(codes: list[str] = typer.Argument(..., help="Codes billed together, e.g. 20610 99213-25"),
          on: str = DateOption, setting: str = typer.Option("practitioner", "--setting",
                                                            help="practitioner or hospital"),
          as_json: bool = JsonOption, config: str | None = ConfigOption) -> None:
    """Validity on the date, NCCI pairs among the codes, MUE per code."""
    from mailbot.codes.edits import CheckError
    from mailbot.codes.edits import check as do_check

    ctx = _context(config)
    when = _date(on)
    with _loaded_session(ctx) as session:
        try:
            result = do_check(session, codes, when, setting)
        except CheckError as exc:
            _fail(str(exc))
    unknown = any(not c["found"] for c in result.codes)
    if as_json:
        _print_json([result.to_dict()])
        if unknown:
            raise typer.Exit(1)
        return
    table = Table(title=f"{setting}, {result.date}")
    for col in ("code", "status", "MUE", "message"):
        table.add_column(col)
    for c in result.codes:
        table.add_row(c["code"], c["status"], str(c["mue"]["value"]) if c["mue"] else "-", c["message"])
    out.print(table)
    for p in result.pairs:
        out.print(f"[bold]{p['column1']} / {p['column2']}[/] modifier indicator {p['modifier_indicator']}: "
                  f"{p['message']} ({p['rationale']})")
    for other in result.other_settings:
        for p in other["pairs"]:
            out.print(f"[dim]{other['table']} (a {other['setting']} claim): {p['column1']} / {p['column2']} "
                      f"modifier indicator {p['modifier_indicator']}[/]")
    for addon in result.addons:
        out.print(f"[{'red' if addon['missing_primary'] else 'green'}]add-on:[/] {addon['message']} ({addon['version']})")
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")
    if unknown:
        raise typer.Exit(1)  # an unknown or malformed code is bad input


@app.command()
def versions(as_json: bool = JsonOption, config: str | None = ConfigOption) -> None:
    """List every loaded code-set version: source, release, valid dates, in force or not, row counts."""
    from mailbot.codes import versions as loaded
    from mailbot.codes.catalogue import version_table

    ctx = _context(config)
    with _loaded_session(ctx) as session:
        rows = loaded(session)
        table_rows = version_table(session)
    items = [{"kind": v.kind, "version": v.version, "setting": v.setting or None, "source": v.source,
              "effective_from": v.effective_from, "effective_to": v.effective_to, "row_count": v.row_count,
              "counts": v.counts, "checksum": v.checksum, "imported_at": v.imported_at} for v in rows]
    if as_json:
        _print_json(items)
        return
    table = Table()
    for col in ("set", "release", "setting", "valid", "today", "rows", "counts", "source", "checksum"):
        table.add_column(col)
    for i in table_rows:
        table.add_row(i["set"], i["version"], i["setting"], f"{i['effective_from'] or ''}..{i['effective_to'] or ''}",
                      i["state"], f"{i['row_count']:,}", i["counts"], i["source"], i["checksum"][:12])
    out.print(table)
