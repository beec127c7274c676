"""consultation intents

The answer engine records which intents fired for a consultation's question,
and on which words or code-set facts ([{"intent", "trigger"}]), so a reviewer
sees why the draft answers what it answers.  Existing rows get an empty list.

Revision ID: b7e2a9c4d1f3
Revises: 620f90256e2c
Create Date: 2026-12-02 05:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b7e2a9c4d1f3'
down_revision = '620f90256e2c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('intents', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('consultation', schema=None) as batch_op:
        batch_op.drop_column('intents')
