"""bounces tied to outbound mail; server-side reviewer sessions

``bounce_event.outbound_id`` names the message of ours that bounced (issue
17: a DSN that matches no mail we sent is ignored, and a subscriber's
bounces are counted per bounced message, so one DSN listing an address
three times counts once).  ``reviewer_session`` keeps each login, so logout
ends it server-side (a cookie captured before logout opens nothing).

Revision ID: b7e1d4c2a9f3
Revises: 620f90256e2c
Create Date: 2026-12-02 05:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = 'b7e1d4c2a9f3'
down_revision = '620f90256e2c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bounce_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outbound_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_bounce_event_outbound_id'), ['outbound_id'], unique=False)
        batch_op.create_foreign_key('fk_bounce_event_outbound_id', 'outbound_message', ['outbound_id'], ['id'])
    op.create_table('reviewer_session',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('ended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['reviewer_id'], ['reviewer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reviewer_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reviewer_session_reviewer_id'), ['reviewer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reviewer_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reviewer_session_reviewer_id'))
    op.drop_table('reviewer_session')
    with op.batch_alter_table('bounce_event', schema=None) as batch_op:
        batch_op.drop_constraint('fk_bounce_event_outbound_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_bounce_event_outbound_id'))
        batch_op.drop_column('outbound_id')
