"""`/metrics` families of the stack family, read from the store at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric

from monitor.config.models import MlmonConfig
from monitor.stack.releases import Staleness
from monitor.stack.store import StackStore
from monitor.store.store import Store


def families(store: Store, config: MlmonConfig) -> Iterable[Metric]:
    now = datetime.now(UTC)
    stack = StackStore(store.engine)
    findings = GaugeMetricFamily(
        "mlmon_stack_findings",
        "Open vulnerability findings (aliases merged) by package, severity, state and whether ignored",
        labels=["project", "package", "severity", "state", "ignored"],
    )
    overdue = GaugeMetricFamily(
        "mlmon_stack_overdue_findings",
        "Open, not ignored affected findings whose fix has been available longer than stack.sla allows",
        labels=["project", "severity"],
    )
    counts: Counter[tuple[str, str, str, str, str]] = Counter()
    late: Counter[tuple[str, str]] = Counter()
    for row in stack.open_findings():
        counts[(row.project, row.package, row.severity, row.state, "true" if row.ignored else "false")] += 1
        due = config.stack.sla.due_at(row.severity, row.state, row.fix_available_at)
        if not row.ignored and due is not None and now > due:
            late[(row.project, row.severity)] += 1
    for labels, count in sorted(counts.items()):
        findings.add_metric(list(labels), float(count))
    for labels2, count in sorted(late.items()):
        overdue.add_metric(list(labels2), float(count))
    yield findings
    yield overdue
    yield from _inventories(stack)
    yield from _staleness(stack, now)
    yield from _feeds(stack)


def _inventories(stack: StackStore) -> Iterable[Metric]:
    build = GaugeMetricFamily(
        "mlmon_stack_torch_build",
        "The torch build a project's source reports (always 1)",
        labels=["project", "source", "version", "variant", "accelerator"],
    )
    collected = GaugeMetricFamily(
        "mlmon_stack_inventory_timestamp_seconds", "When the source's inventory was read", labels=["project", "source"]
    )
    for row in stack.inventory_rows():
        if row.torch_version:
            build.add_metric(
                [
                    row.project,
                    row.source,
                    row.torch_version,
                    row.torch_variant or "unknown",
                    row.torch_accelerator or "",
                ],
                1.0,
            )
        collected.add_metric([row.project, row.source], row.collected_at.timestamp())
    yield from (build, collected)


def _staleness(stack: StackStore, now: datetime) -> Iterable[Metric]:
    minors = GaugeMetricFamily(
        "mlmon_stack_minors_behind",
        "Minor releases newer than the installed one",
        labels=["project", "package", "installed"],
    )
    age = GaugeMetricFamily(
        "mlmon_stack_newer_release_age_seconds",
        "Time since the first release newer than the installed one (0 when up to date)",
        labels=["project", "package", "installed"],
    )
    supported = GaugeMetricFamily(
        "mlmon_stack_minor_supported",
        "1 when the installed minor line can still get patch releases, 0 when not",
        labels=["project", "package", "installed"],
    )
    yanked = GaugeMetricFamily(
        "mlmon_stack_installed_yanked",
        "1 when the installed version was yanked",
        labels=["project", "package", "installed"],
    )
    for project, row in stack.project_rows().items():
        for doc in row.staleness or ():
            stale = Staleness.from_doc(doc)
            labels = [project, stale.package, stale.installed]
            minors.add_metric(labels, float(stale.minors_behind))
            age.add_metric(labels, stale.behind_seconds(now))
            if stale.minor_supported is not None:
                supported.add_metric(labels, 1.0 if stale.minor_supported else 0.0)
            yanked.add_metric(labels, 1.0 if stale.installed_yanked else 0.0)
    yield from (minors, age, supported, yanked)


def _feeds(stack: StackStore) -> Iterable[Metric]:
    up = GaugeMetricFamily("mlmon_stack_feed_up", "1 when the feed's last refresh succeeded", labels=["feed", "kind"])
    success = GaugeMetricFamily(
        "mlmon_stack_feed_last_success_timestamp_seconds", "When the feed last refreshed successfully", labels=["feed"]
    )
    records = GaugeMetricFamily("mlmon_stack_feed_records", "Records the feed holds", labels=["feed"])
    for feed in stack.feeds():
        up.add_metric([feed.name, feed.kind], 1.0 if feed.up else 0.0)
        if feed.last_success_at is not None:
            success.add_metric([feed.name], feed.last_success_at.timestamp())
        records.add_metric([feed.name], float(feed.records))
    revision = GaugeMetricFamily("mlmon_stack_advisory_revision", "The advisory database revision matched against")
    current = stack.content_revision()
    if current is not None:
        revision.add_metric([], float(current))
    yield from (up, success, records, revision)
