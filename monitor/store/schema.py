"""Tables of the store (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

A series is (project, metric, labels); a sample is (series, ts, value), unique on (series, ts), so
re-sent samples are idempotent. Samples older than the raw retention are folded into
`samples_hourly`. Alert state, silences, the notification log and the outbox live here too, so a
restart neither forgets a firing alert nor loses a notification.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from monitor.store.columns import JsonDoc, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("metric", String(150), nullable=False),
    Column("labels", Text, nullable=False, doc="canonical JSON of the label set"),
    Column("labels_hash", String(32), nullable=False, doc="blake2b of `labels`, keeps the unique key short"),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("project", "metric", "labels_hash"),
    Index(None, "metric"),
)

samples = Table(
    "samples",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("ts", BigInteger, primary_key=True, doc="epoch milliseconds"),
    Column("value", Double, nullable=False),
    sqlite_with_rowid=False,
)

samples_hourly = Table(
    "samples_hourly",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
    Column("ts", BigInteger, primary_key=True, doc="start of the hour, epoch milliseconds"),
    Column("count", Integer, nullable=False),
    Column("sum", Double, nullable=False),
    Column("min", Double, nullable=False),
    Column("max", Double, nullable=False),
    Column("last", Double, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False, doc="epoch milliseconds"),
    Column("kind", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("message", Text, nullable=False, default=""),
    Column("source", String(64)),
    Column("labels", JsonDoc, nullable=False, default=dict),
    Index(None, "project", "ts"),
)

source_runs = Table(
    "source_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("duration_seconds", Double, nullable=False),
    Column("outcome", String(16), nullable=False, doc="ok | failed | timeout"),
    Column("error", Text),
    Column("samples", Integer, nullable=False, default=0),
    Column("events", Integer, nullable=False, default=0),
    Column("worker", String(128), doc="the worker that ran it (None: in-process, or before workers)"),
    Column("job_id", BigInteger, doc="the queue job it ran, when it came from the PostgreSQL queue"),
    Index(None, "project", "source", "started_at"),
    Index(None, "started_at"),
    Index(None, "job_id"),
)

source_state = Table(
    "source_state",
    metadata,
    Column("project", String(64), primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("first_run_at", UtcDateTime),
    Column("last_run_at", UtcDateTime),
    Column("last_success_at", UtcDateTime),
    Column("last_outcome", String(16)),
    Column("last_error", Text),
    Column("last_duration_seconds", Double),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("runs_total", BigInteger, nullable=False, default=0),
    Column("failures_total", BigInteger, nullable=False, default=0),
    Column("run_seconds_total", Double, nullable=False, default=0.0),
    Column("checkpoint", JsonDoc, doc="a source's own resume state, e.g. files already read"),
    Column("last_worker", String(128), doc="the worker that ran the last run"),
)

# --- alert engine -------------------------------------------------------------------------------

alert_instances = Table(
    "alert_instances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(128), nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("project", String(64)),
    Column("labels", JsonDoc, nullable=False),
    Column("annotations", JsonDoc, nullable=False),
    Column("state", String(16), nullable=False, doc="pending | firing | resolved"),
    Column("nodata", Boolean, nullable=False, default=False),
    Column("value", Double),
    Column("active_at", UtcDateTime),
    Column("fired_at", UtcDateTime),
    Column("resolved_at", UtcDateTime),
    Column("keep_firing_since", UtcDateTime),
    Column("nodata_since", UtcDateTime),
    Column("last_eval_at", UtcDateTime),
    Column("acked_by", String(128)),
    Column("acked_at", UtcDateTime),
    Column("ack_comment", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("rule", "fingerprint"),
    Index(None, "state"),
    Index(None, "project"),
)

rule_state = Table(
    "rule_state",
    metadata,
    Column("rule", String(128), primary_key=True),
    Column("key", String(64), primary_key=True, doc="fingerprint of the series the state belongs to"),
    Column("state", JsonDoc, nullable=False, doc="a rule kind's own memory, e.g. a change detector"),
    Column("updated_at", UtcDateTime, nullable=False),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", JsonDoc, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "ends_at"),
)

alert_groups = Table(
    "alert_groups",
    metadata,
    Column("group_key", String(64), primary_key=True, doc="sha256 of route + receiver + group labels"),
    Column("route", String(128), nullable=False),
    Column("receiver", String(128), nullable=False),
    Column("group_labels", JsonDoc, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_flush_at", UtcDateTime, nullable=False),
    Column("last_flush_at", UtcDateTime),
    Column("sent_firing", JsonDoc, nullable=False, doc="fingerprints in the last delivered notification"),
    Column("sent_resolved", JsonDoc, nullable=False),
    Column("last_sent_at", UtcDateTime, doc="when the last notification of this group was delivered"),
)

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("group_key", String(64), nullable=False),
    Column("receiver", String(128), nullable=False),
    Column("integration", String(32), nullable=False, doc="webhook | slack | email | alertmanager"),
    Column("target", String(128), nullable=False, doc="which configured notifier sends it"),
    Column("payload", JsonDoc, nullable=False),
    Column("status", String(16), nullable=False, doc="pending | sent | failed"),
    Column("reason", String(32), nullable=False, doc="why it was sent: new_alert, repeat, resolved ..."),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),
    Column("last_error", Text),
    Index(None, "status", "next_attempt_at"),
    Index(None, "group_key"),
)
