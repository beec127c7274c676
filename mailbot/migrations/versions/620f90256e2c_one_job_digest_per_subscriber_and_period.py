"""one job digest per subscriber and period

Job digests become one email per subscriber and period (one section per
subscription), so ``digest_run`` is unique on ``(subscriber_id, period_key)``
instead of ``(subscription_id, period_key)``.  The old unique constraint has
no name (it differs between SQLite and PostgreSQL), so the table is rebuilt:
a new table, the rows copied (subscriber from the subscription; each old job
run becomes a one-section run; code-update keys get the subscription in them, codes:<version>/S-<id>,
so several UPDATES subscriptions of one subscriber stay distinct), the old
table dropped and the new one renamed.

Revision ID: 620f90256e2c
Revises: 2715cf65f157
Create Date: 2026-11-24 06:20:52.215976
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '620f90256e2c'
down_revision = '2715cf65f157'
branch_labels = None
depends_on = None

INDEXES = ("created_at", "state", "subscription_id", "subscriber_id")


def _create(name: str, *, new: bool) -> None:
    op.create_table(name,
    sa.Column('id', sa.Integer(), nullable=False),
    *([sa.Column('subscriber_id', sa.Integer(), nullable=False)] if new else []),
    sa.Column('subscription_id', sa.Integer(), nullable=new),
    sa.Column('period_key', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    *([sa.Column('sections', sa.JSON(), nullable=False)] if new else []),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('window_end', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('outbound_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['outbound_id'], ['outbound_message.id'], ),
    *([sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], )] if new else []),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], ),
    sa.PrimaryKeyConstraint('id'),
    (sa.UniqueConstraint('subscriber_id', 'period_key', name='uq_digest_run_subscriber_period') if new
     else sa.UniqueConstraint('subscription_id', 'period_key')),
    )


def _swap(new: bool) -> None:
    for column in INDEXES:
        if column == "subscriber_id" and new:
            continue
        op.drop_index(f'ix_digest_run_{column}', table_name='digest_run')
    op.drop_table('digest_run')
    op.rename_table('digest_run_next', 'digest_run')
    for column in INDEXES:
        if column == "subscriber_id" and not new:
            continue
        op.create_index(f'ix_digest_run_{column}', 'digest_run', [column], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # Rows were copied with their ids: move the id sequence past them.
        op.execute("SELECT setval(pg_get_serial_sequence('digest_run', 'id'), "
                   "COALESCE((SELECT MAX(id) FROM digest_run), 0) + 1, false)")


COMMON = "id, state, window_start, window_end, item_ids, outbound_id, reason, created_at, finished_at"


def upgrade() -> None:
    _create('digest_run_next', new=True)
    op.execute(
        f"INSERT INTO digest_run_next (subscriber_id, subscription_id, period_key, sections, {COMMON}) "
        f"SELECT s.subscriber_id, CASE WHEN r.period_key LIKE 'codes:%' THEN r.subscription_id END, "
        f"CASE WHEN r.period_key LIKE 'codes:%' THEN r.period_key || '/S-' || r.subscription_id "
        f"ELSE r.period_key END, '[]', "
        + ", ".join(f"r.{c.strip()}" for c in COMMON.split(","))
        + " FROM digest_run r JOIN subscription s ON s.id = r.subscription_id"
        # Two old job runs of one subscriber in one period would collide: keep the first.
        " WHERE r.period_key LIKE 'codes:%' OR r.id = (SELECT MIN(o.id) FROM digest_run o"
        " JOIN subscription os ON os.id = o.subscription_id"
        " WHERE os.subscriber_id = s.subscriber_id AND o.period_key = r.period_key)")
    _swap(new=True)


def downgrade() -> None:
    _create('digest_run_next', new=False)
    # codes:<version>/S-<id> -> codes:<version>
    key = ("split_part(r.period_key, '/', 1)" if op.get_bind().dialect.name == "postgresql"
           else "CASE WHEN instr(r.period_key, '/') > 0 THEN substr(r.period_key, 1, instr(r.period_key, '/') - 1) "
                "ELSE r.period_key END")
    op.execute(
        f"INSERT INTO digest_run_next (subscription_id, period_key, {COMMON}) "
        f"SELECT COALESCE(r.subscription_id, (SELECT MIN(s.id) FROM subscription s "
        f"WHERE s.subscriber_id = r.subscriber_id AND s.kind = 'jobs')), {key}, "
        + ", ".join(f"r.{c.strip()}" for c in COMMON.split(","))
        + " FROM digest_run r")
    _swap(new=False)
