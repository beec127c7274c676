"""merge the parts of the schema

Revision ID: 3a6495752b7b
Revises: 47fc502052de, a3c9e5d1f0b7, cea147c141ee, f28753860d21
Create Date: 2026-11-24 06:03:01.500513
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '3a6495752b7b'
down_revision = ('47fc502052de', 'a3c9e5d1f0b7', 'cea147c141ee', 'f28753860d21')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
