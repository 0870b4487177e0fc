"""alert fingerprints as Alertmanager computes them (FNV-1a 64 over the sorted labels)

Stored alerts were keyed by a SHA-256 prefix of their labels. Every stored alert gets the new
fingerprint of its own labels, and each notification group's record of what it announced is
rewritten with them, so no alert is seen as new (and notified again) after the upgrade. The
downgrade computes the old ones the same way.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _fnv(labels: Mapping[str, str]) -> str:
    # a copy of alerts.model.fingerprint at this revision: migrations never import live code
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        if labels[name] == "":
            continue
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _sha(labels: Mapping[str, str]) -> str:
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _doc(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _rekey(compute: Callable[[Mapping[str, str]], str]) -> None:
    conn = op.get_bind()
    alerts = sa.table("alert_instances", sa.column("id"), sa.column("fingerprint"), sa.column("labels", JSON_DOC))
    groups = sa.table(
        "alert_groups",
        sa.column("group_key"),
        sa.column("sent_firing", JSON_DOC),
        sa.column("sent_resolved", JSON_DOC),
    )
    renamed: dict[str, str] = {}
    for row in conn.execute(sa.select(alerts.c.id, alerts.c.fingerprint, alerts.c.labels)).all():
        new = compute(_doc(row.labels))
        if new != row.fingerprint:
            renamed[row.fingerprint] = new
            conn.execute(sa.update(alerts).where(alerts.c.id == row.id).values(fingerprint=new))
    if not renamed:
        return
    for row in conn.execute(sa.select(groups.c.group_key, groups.c.sent_firing, groups.c.sent_resolved)).all():
        firing = [renamed.get(fp, fp) for fp in _doc(row.sent_firing)]
        resolved = [renamed.get(fp, fp) for fp in _doc(row.sent_resolved)]
        conn.execute(
            sa.update(groups)
            .where(groups.c.group_key == row.group_key)
            .values(sent_firing=firing, sent_resolved=resolved)
        )


def upgrade() -> None:
    _rekey(_fnv)


def downgrade() -> None:
    _rekey(_sha)
