"""stack family tables: advisories (every revision), feeds, release histories, inventories, package
history, findings and their event log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here rather than imported, so later schema edits cannot change this migration.
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stack_advisory_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("feed", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("errors", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_advisory_revisions")),
    )
    op.create_table(
        "stack_advisories",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("modified", TIME, nullable=False),
        sa.Column("published", TIME, nullable=True),
        sa.Column("withdrawn", TIME, nullable=True),
        sa.Column("packages", JSON_DOC, nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.Column("added_revision", sa.Integer(), nullable=False),
        sa.Column("replaced_revision", sa.Integer(), nullable=True),
        sa.Column("imported_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["added_revision"],
            ["stack_advisory_revisions.id"],
            name=op.f("fk_stack_advisories_added_revision_stack_advisory_revisions"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_revision"],
            ["stack_advisory_revisions.id"],
            name=op.f("fk_stack_advisories_replaced_revision_stack_advisory_revisions"),
        ),
        sa.PrimaryKeyConstraint("id", "modified", name=op.f("pk_stack_advisories")),
    )
    with op.batch_alter_table("stack_advisories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stack_advisories_replaced_revision"), ["replaced_revision"], unique=False)

    op.create_table(
        "stack_feeds",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("last_attempt_at", TIME, nullable=True),
        sa.Column("last_success_at", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stack_feeds")),
    )
    op.create_table(
        "stack_releases",
        sa.Column("package", sa.String(length=128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("fetched_at", TIME, nullable=False),
        sa.Column("releases", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("package", name=op.f("pk_stack_releases")),
    )
    op.create_table(
        "stack_inventories",
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("collected_at", TIME, nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("python_version", sa.String(length=32), nullable=True),
        sa.Column("torch_version", sa.String(length=64), nullable=True),
        sa.Column("torch_variant", sa.String(length=16), nullable=True),
        sa.Column("torch_accelerator", sa.String(length=32), nullable=True),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("project", "source", name=op.f("pk_stack_inventories")),
    )
    op.create_table(
        "stack_packages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("package", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=128), nullable=False),
        sa.Column("first_seen_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("removed_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_packages")),
    )
    with op.batch_alter_table("stack_packages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stack_packages_project_package_first_seen_at"),
            ["project", "package", "first_seen_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_stack_packages_project_source_removed_at"), ["project", "source", "removed_at"], unique=False
        )

    op.create_table(
        "stack_projects",
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("reconciled_at", TIME, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("advisory_revision", sa.Integer(), nullable=True),
        sa.Column("staleness", JSON_DOC, nullable=False),
        sa.Column("summary", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_stack_projects")),
    )
    op.create_table(
        "stack_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("package", sa.String(length=128), nullable=False),
        sa.Column("vuln_id", sa.String(length=128), nullable=False),
        sa.Column("ids", JSON_DOC, nullable=False),
        sa.Column("versions", JSON_DOC, nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("fixed_in", sa.String(length=128), nullable=True),
        sa.Column("fix_available_at", TIME, nullable=True),
        sa.Column("published", TIME, nullable=True),
        sa.Column("exposed_since", TIME, nullable=True),
        sa.Column("first_seen_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("resolved_at", TIME, nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("ignored", sa.Boolean(), nullable=False),
        sa.Column("ignore_reason", sa.Text(), nullable=True),
        sa.Column("ignore_expires", sa.Date(), nullable=True),
        sa.Column("ignored_at", TIME, nullable=True),
        sa.Column("advisory_revision", sa.Integer(), nullable=True),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_findings")),
        sa.UniqueConstraint(
            "project",
            "package",
            "vuln_id",
            "first_seen_at",
            name=op.f("uq_stack_findings_project_package_vuln_id_first_seen_at"),
        ),
    )
    with op.batch_alter_table("stack_findings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stack_findings_project_resolved_at"), ["project", "resolved_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_stack_findings_resolved_at"), ["resolved_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_stack_findings_vuln_id"), ["vuln_id"], unique=False)

    op.create_table(
        "stack_finding_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["stack_findings.id"],
            name=op.f("fk_stack_finding_events_finding_id_stack_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stack_finding_events")),
    )
    with op.batch_alter_table("stack_finding_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stack_finding_events_finding_id"), ["finding_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stack_finding_events_project_at"), ["project", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stack_finding_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stack_finding_events_project_at"))
        batch_op.drop_index(batch_op.f("ix_stack_finding_events_finding_id"))
    op.drop_table("stack_finding_events")
    with op.batch_alter_table("stack_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stack_findings_vuln_id"))
        batch_op.drop_index(batch_op.f("ix_stack_findings_resolved_at"))
        batch_op.drop_index(batch_op.f("ix_stack_findings_project_resolved_at"))
    op.drop_table("stack_findings")
    op.drop_table("stack_projects")
    with op.batch_alter_table("stack_packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stack_packages_project_source_removed_at"))
        batch_op.drop_index(batch_op.f("ix_stack_packages_project_package_first_seen_at"))
    op.drop_table("stack_packages")
    op.drop_table("stack_inventories")
    op.drop_table("stack_releases")
    op.drop_table("stack_feeds")
    with op.batch_alter_table("stack_advisories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stack_advisories_replaced_revision"))
    op.drop_table("stack_advisories")
    op.drop_table("stack_advisory_revisions")
