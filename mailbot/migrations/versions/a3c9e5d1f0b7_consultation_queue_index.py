"""consultation queue index

Revision ID: a3c9e5d1f0b7
Revises: 27f06858ce34
Create Date: 2026-11-24 05:20:00

The review queue lists one state ordered by waiting_since, id; this index
serves that without a sort (10,000 pending items: no temporary B-tree).
"""
from alembic import op

revision = 'a3c9e5d1f0b7'
down_revision = '27f06858ce34'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.create_index('ix_consultation_queue', ['state', 'waiting_since', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_index('ix_consultation_queue')
