"""merge the coding-brain round's schema changes

Code flags, the Alphabetic Index, consultation intents, reviewer-day fields
and tables, and bounces tied to outbound mail with server-side reviewer
sessions were written side by side from one head; this joins them.

Revision ID: d9a4c3e2b1f0
Revises: b5d2e8a41c07, b7e1c2d3a4f5, b7e1d4c2a9f3, b7e2a9c4d1f3, c1975ac89d0c
Create Date: 2026-12-02 06:40:00
"""

revision = 'd9a4c3e2b1f0'
down_revision = ('b5d2e8a41c07', 'b7e1c2d3a4f5', 'b7e1d4c2a9f3', 'b7e2a9c4d1f3', 'c1975ac89d0c')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
