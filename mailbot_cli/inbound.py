"""`mailbot inbound ...`: quarantined inbound mail, and replaying it.

    mailbot inbound quarantine          # unresolved items, newest first
    mailbot inbound replay 12           # put item 12's message back through the router

Replay resets the message to ``received``.  With a broker configured the
router is poked at once; in embedded mode the running ``serve`` process's
reconciler picks it up (within ``broker.reconcile_seconds``), or ``--now``
routes it in this process.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inbound mail: list quarantined messages, replay them.", no_args_is_help=True)
err = Console(stderr=True)
ConfigOption = typer.Option(None, "--config", "-c", help="Path to config.toml.")


def _context(config: str | None):
    from mailbot_cli.main import context

    return context(config)


@app.command("quarantine")
def list_quarantine(config: str | None = ConfigOption,
                    limit: int = typer.Option(50, help="How many items to show.")) -> None:
    """List unresolved quarantined inbound messages with their reasons."""
    from mailbot.models import InboundMessage
    from mailbot.services.inbound import quarantined

    ctx = _context(config)
    items = quarantined(ctx, limit=limit)
    if not items:
        print("nothing in quarantine")
        return
    table = Table("item", "inbound", "stage", "when (UTC)", "from", "subject", "reason")
    with ctx.db.read() as session:
        for item in items:
            row = session.get(InboundMessage, item.ref_id) if item.ref_id else None
            table.add_row(str(item.id), str(item.ref_id or ""), item.stage, item.created_at.strftime("%Y-%m-%d %H:%M"),
                          (row.from_addr or row.envelope_from) if row else "", (row.subject if row else "")[:60],
                          item.reason)
    Console().print(table)


@app.command("replay")
def replay_item(item_id: int = typer.Argument(..., help="Quarantine item id (see `mailbot inbound quarantine`)."),
                config: str | None = ConfigOption,
                now: bool = typer.Option(False, "--now", help="Route the message in this process right away."),
                by: str = typer.Option("operator", help="Who resolves the item (recorded).")) -> None:
    """Send a quarantined message through the router again."""
    from mailbot.services.inbound import process, replay

    ctx = _context(config)
    try:
        pokes = replay(ctx, item_id, by=by)
    except (LookupError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    inbound_id = pokes[0].id
    if now:
        follow = process(ctx, inbound_id)
        _dispatch(ctx, follow)
        from mailbot.models import InboundMessage

        with ctx.db.read() as session:
            row = session.get(InboundMessage, inbound_id)
        print(f"inbound {inbound_id}: {row.status} ({row.action or row.error})")
        return
    if _dispatch(ctx, pokes):
        print(f"inbound {inbound_id} queued for routing")
    else:
        print(f"inbound {inbound_id} is back in 'received'; the running service's reconciler will route it")


def _dispatch(ctx, pokes) -> bool:
    """Send pokes when a broker connects us to workers; False in embedded mode."""
    if ctx.settings.embedded or not pokes:
        return False
    import workflows.broker

    workflows.broker.install(ctx.settings)
    from workflows.actors import dispatch

    dispatch(pokes)
    return True
