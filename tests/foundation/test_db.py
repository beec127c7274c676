"""The database layer on both backends."""

from sqlmodel import select

from mailbot.models import InboundMessage, utcnow


def test_a_committed_row_is_read_back_with_aware_utc(db):
    with db.session() as session:
        session.add(InboundMessage(source="cli", raw=b"Subject: x\r\n\r\nhi", raw_sha256="0" * 64))
    with db.read() as session:
        row = session.exec(select(InboundMessage)).one()
    assert row.raw == b"Subject: x\r\n\r\nhi"
    assert row.received_at.tzinfo is not None
    assert abs((utcnow() - row.received_at).total_seconds()) < 60


def test_a_failed_transaction_leaves_nothing(db):
    try:
        with db.session() as session:
            session.add(InboundMessage(source="cli", raw=b"x", raw_sha256="1" * 64))
            session.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.read() as session:
        assert session.exec(select(InboundMessage)).all() == []


def test_the_plain_inbound_row_has_every_column_of_the_table():
    """``InboundRow`` (the hot path's copy of a row) must follow the table."""
    import dataclasses

    from mailbot.models import InboundRow

    assert [f.name for f in dataclasses.fields(InboundRow)] == [c.name for c in InboundMessage.__table__.c]


def test_a_core_transaction_commits_or_leaves_nothing(db):
    from sqlalchemy import insert

    table = InboundMessage.__table__
    lists = {"envelope_to": [], "references": [], "codes": [], "route": []}
    with db.begin() as conn:
        conn.execute(insert(table).values(source="cli", raw=b"x", raw_sha256="2" * 64, **lists))
    try:
        with db.begin() as conn:
            conn.execute(insert(table).values(source="cli", raw=b"y", raw_sha256="3" * 64, **lists))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with db.read() as session:
        assert [r.raw_sha256 for r in session.exec(select(InboundMessage)).all()] == ["2" * 64]
