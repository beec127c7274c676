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
