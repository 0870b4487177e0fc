"""quality: the sorted raw values of each numeric reference, for exact Wasserstein and KS

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_reference_values",
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["quality_references.id"],
            name=op.f("fk_quality_reference_values_reference_id_quality_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reference_id", name=op.f("pk_quality_reference_values")),
    )


def downgrade() -> None:
    op.drop_table("quality_reference_values")
