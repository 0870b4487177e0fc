"""quality family tables: reference distributions and the comparisons made against them

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen here rather than imported, so later schema edits cannot change this migration.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "quality_references",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("labels_hash", sa.String(length=32), nullable=False),
        sa.Column("column_name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("profile", JSON_DOC, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_references")),
    )
    with op.batch_alter_table("quality_references", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quality_references_lookup",
            ["project", "dataset", "labels_hash", "column_name", "active"],
            unique=False,
        )

    op.create_table(
        "quality_comparisons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("labels_hash", sa.String(length=32), nullable=False),
        sa.Column("column_name", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("summary", JSON_DOC, nullable=False),
        sa.Column("statistics", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["quality_references.id"],
            name=op.f("fk_quality_comparisons_reference_id_quality_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_comparisons")),
    )
    with op.batch_alter_table("quality_comparisons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quality_comparisons_project_dataset_ts"), ["project", "dataset", "ts"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_quality_comparisons_reference_id"), ["reference_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quality_comparisons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quality_comparisons_reference_id"))
        batch_op.drop_index(batch_op.f("ix_quality_comparisons_project_dataset_ts"))
    op.drop_table("quality_comparisons")
    with op.batch_alter_table("quality_references", schema=None) as batch_op:
        batch_op.drop_index("ix_quality_references_lookup")
    op.drop_table("quality_references")
