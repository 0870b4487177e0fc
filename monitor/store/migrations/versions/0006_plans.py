"""stack remediation plans: cached index pages and core metadata, per-project plans

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen here rather than imported, so later schema edits cannot change this migration.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stack_index_pages",
        sa.Column("index_url", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fetched_at", TIME, nullable=True),
        sa.Column("document", JSON_DOC, nullable=True),
        sa.Column("last_attempt_at", TIME, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failing_since", TIME, nullable=True),
        sa.PrimaryKeyConstraint("index_url", "name", name=op.f("pk_stack_index_pages")),
    )
    op.create_table(
        "stack_index_metadata",
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fetched_at", TIME, nullable=False),
        sa.Column("requires_dist", JSON_DOC, nullable=False),
        sa.Column("requires_python", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_stack_index_metadata")),
    )
    op.create_table(
        "stack_plans",
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("computed_at", TIME, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_stack_plans")),
    )


def downgrade() -> None:
    op.drop_table("stack_plans")
    op.drop_table("stack_index_metadata")
    op.drop_table("stack_index_pages")
