"""spend family tables: none yet

The spend family keeps its data in the foundation's tables: daily spend as samples (one per
source, attributed project and day; see monitor/spend/series.py), every FOCUS file read or gone
as an event, each source's files and data horizon in its checkpoint. This revision stays in the
chain so a later spend table (a ledger written through a runner "sink") can be added here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
