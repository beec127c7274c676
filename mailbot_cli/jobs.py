"""`mailbot jobs ...`: the job board from the command line.

    mailbot jobs import postings.csv          # CSV or JSON
    mailbot jobs import-feed https://example.org/jobs.rss   # RSS/Atom, or an HTML page with JobPosting JSON-LD
    mailbot jobs list [--status open]
    mailbot jobs approve 12 | reject 12 | expire 12
    mailbot jobs digest-run [--now]           # claim due digests and send them from this process

Rows that cannot be imported are listed with their reason; the exit status
is 1 when a whole source could not be read.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import update
from sqlmodel import select

from mailbot.jobs import board, feeds, importers

app = typer.Typer(help="Job board: import postings and feeds, list, approve, expire, run digests.",
                  no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ConfigOption = typer.Option(None, "--config", "-c", help="Path to config.toml.")


def _context(config: str | None):
    from mailbot_cli.main import context

    return context(config)


def _import(config: str | None, reader, source: str) -> None:
    ctx = _context(config)
    try:
        inputs, problems = reader(source)
    except (importers.UnreadableSource, OSError, ValueError) as exc:
        err.print(f"[bold red]cannot import {source}:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    with ctx.db.session() as session:
        report = board.import_inputs(session, inputs, problems)
    out.print(f"{source}: {report.summary()}", highlight=False)
    for problem in report.problems:
        out.print(f"  skipped: {problem}", highlight=False)


@app.command("import")
def import_file(path: str = typer.Argument(..., help="CSV or JSON file (or http(s) URL)."),
                config: str | None = ConfigOption) -> None:
    """Import postings from a CSV or JSON file; duplicates are merged."""
    _import(config, importers.read_file, path)


@app.command("import-feed")
def import_feed(source: str = typer.Argument(..., help="RSS/Atom feed or HTML page (URL or file)."),
                config: str | None = ConfigOption) -> None:
    """Import an RSS/Atom feed, or the schema.org JobPostings of an HTML page."""
    _import(config, feeds.read_feed_or_page, source)


@app.command("list")
def list_jobs(status: str = typer.Option("", "--status", help="pending, open, expired or rejected."),
              limit: int = typer.Option(100, "--limit"), config: str | None = ConfigOption) -> None:
    """List postings, newest first."""
    from mailbot.models.jobs import Job

    ctx = _context(config)
    with ctx.db.read() as session:
        query = select(Job).order_by(Job.id.desc()).limit(limit)
        if status:
            query = query.where(Job.status == status)
        jobs = session.exec(query).all()
    table = Table("ref", "status", "title", "employer", "location", "credentials", "opened", "expires")
    for job in jobs:
        table.add_row(job.reference, job.status, job.title, job.employer, job.location, ", ".join(job.credentials),
                      job.opened_at.date().isoformat() if job.opened_at else "",
                      job.expires_at.date().isoformat() if job.expires_at else "")
    out.print(table)


def _move(config: str | None, job_id: int, fn, verb: str) -> None:
    ctx = _context(config)
    with ctx.db.session() as session:
        moved = fn(session, job_id)
    if not moved:
        err.print(f"J-{job_id} was not {verb}: no such posting, or not in a state that allows it", highlight=False)
        raise typer.Exit(1)
    out.print(f"J-{job_id} {verb}", highlight=False)


@app.command("approve")
def approve(job_id: int, config: str | None = ConfigOption) -> None:
    """Open a pending posting (it counts as new from now)."""
    _move(config, job_id, board.approve, "approved")


@app.command("reject")
def reject(job_id: int, config: str | None = ConfigOption) -> None:
    """Reject a pending posting."""
    _move(config, job_id, board.reject, "rejected")


@app.command("expire")
def expire(job_id: int, config: str | None = ConfigOption) -> None:
    """Close a posting now."""
    _move(config, job_id, board.expire, "expired")


@app.command("digest-run")
def digest_run(now: bool = typer.Option(False, "--now", help="Treat every active job subscription as due now."),
               config: str | None = ConfigOption) -> None:
    """Claim due digests (jobs and code updates) and send them from this process."""
    from mailbot.jobs import code_updates, digest, schedule
    from mailbot.models.base import utcnow
    from mailbot.models.jobs import Subscription, SubscriptionKind, SubscriptionStatus
    from mailbot.services import delivery

    ctx = _context(config)
    moment = utcnow()
    with ctx.db.session() as session:
        board.expire_overdue(session, moment)
        if now:
            session.exec(update(Subscription).where(Subscription.kind == SubscriptionKind.JOBS,
                                                    Subscription.status == SubscriptionStatus.ACTIVE)
                         .values(next_due_at=moment))
    run_ids: list[int] = []
    while True:
        with ctx.db.session() as session:
            batch = schedule.claim_due(session, ctx.settings, moment)
        run_ids += batch
        if not batch:
            break
    with ctx.db.session() as session:
        run_ids += code_updates.claim_runs(session, now=moment)
    sent = failed = 0
    for run_id in run_ids:
        for poke in digest.send_digest(ctx, run_id):
            try:
                result = delivery.deliver(ctx, poke.id)
            except delivery.RetryLater as exc:
                err.print(f"digest run {run_id}: delivery will be retried by a worker ({exc})", highlight=False)
                continue
            sent += result == "sent"
            failed += result == "failed"
    out.print(f"{len(run_ids)} digest(s) due: {sent} sent, {len(run_ids) - sent - failed} skipped or left for a worker, "
              f"{failed} failed", highlight=False)
