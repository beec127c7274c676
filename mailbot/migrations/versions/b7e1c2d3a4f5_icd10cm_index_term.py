"""ICD-10-CM Alphabetic Index, drug and neoplasm table terms (operator import)

Revision ID: b7e1c2d3a4f5
Revises: 620f90256e2c
Create Date: 2026-12-02 05:40:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'b7e1c2d3a4f5'
down_revision = '620f90256e2c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('icd10cm_index_term',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('column', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('see', sa.Text(), nullable=False),
    sa.Column('see_also', sa.Text(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['code_set_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('icd10cm_index_term', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_icd10cm_index_term_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_icd10cm_index_term_version_id'), ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('icd10cm_index_term', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_icd10cm_index_term_version_id'))
        batch_op.drop_index(batch_op.f('ix_icd10cm_index_term_code'))
    op.drop_table('icd10cm_index_term')
