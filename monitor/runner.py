"""Run one source: time it, bound it, validate what it returned, store it with its outcome.

A source that raises, hangs past its timeout or returns garbage is recorded as failed with the
reason; nothing it returned is stored, and no other source is affected. A hung collector cannot
be killed from Python, so its thread is left behind and the source is reported as still hung
until that thread ends.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from collectors.base import CollectContext, CollectResult, EventDraft, Reading
from monitor.core.clock import Clock
from monitor.core.errors import SourceError
from monitor.core.naming import labels_problem, metric_name_problem
from monitor.core.text_cap import cap_text
from monitor.core.types import Event, Sample, SeriesKey, labels_of, ms_from_datetime
from monitor.http import HttpFactory
from monitor.plans import SourcePlan
from monitor.store.db import write_tx
from monitor.store.sources import RunRecord
from monitor.store.store import Store

log = logging.getLogger("mlmon.runner")

IngestListener = Callable[[set[SeriesKey]], None]
MAX_READINGS_PER_RUN = 1_000_000
STOP_GRACE_SECONDS = 2.0
FUTURE_TOLERANCE = timedelta(hours=1)
MAX_EVENT_KIND = 64  # the widths of the events table's columns
MAX_EVENT_SUBJECT = 200


class GarbageOutput(SourceError):
    """The collector returned something that is not a valid result."""


@dataclass
class _Hung:
    thread: threading.Thread
    since: datetime


@dataclass
class SourceRunner:
    """Runs sources against a store. Thread-safe: the scheduler calls it from its worker pool."""

    store: Store
    clock: Clock
    http: HttpFactory = field(default_factory=HttpFactory)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    listeners: list[IngestListener] = field(default_factory=list)
    _hung: dict[str, _Hung] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on shutdown: no new run starts, and runs in flight are given up after STOP_GRACE_SECONDS."""

    def stop(self) -> None:
        self.stopping.set()

    def run(
        self,
        plan: SourcePlan,
        *,
        worker: str | None = None,
        job_id: int | None = None,
        collected: Callable[[], None] | None = None,
    ) -> RunRecord:
        """Run `plan` once and store its outcome; `worker` and `job_id` say who ran it from the queue.
        `collected()` is called when the collection has ended, before its outcome is stored (a queue
        worker then fetches its next job while this one's writes are under way)."""
        started = self.clock.now()
        t0 = time.perf_counter()
        who = _Who(worker, job_id)
        if self.stopping.is_set():
            return self._failure(plan, started, t0, "not run: mlmon is shutting down", "cancelled", who)
        hung = self._still_hung(plan.id)
        if hung is not None:
            record = self._failure(plan, started, t0, f"previous run is still hung (since {hung.isoformat()})", who=who)
            return self._save_failure(record)
        try:
            status = self.store.sources.status(plan.project, plan.source)
            ctx = CollectContext(
                project=plan.project,
                source=plan.source,
                now=started,
                timeout=plan.timeout_seconds,
                reader=self.store.samples,
                events=self.store.events,
                checkpoint=dict(status.checkpoint or {}) if status else {},
                http=self.http.with_timeout(plan.timeout_seconds),
                env=self.env,
            )
            try:
                result = self._bounded(plan, ctx)
            finally:
                if collected is not None:
                    collected()
            samples, events = _validate(plan, result, started)
        except _Timeout:
            record = self._failure(plan, started, t0, f"timed out after {plan.timeout_seconds:g}s", "timeout", who)
            return self._save_failure(record)
        except SourceError as exc:
            return self._save_failure(self._failure(plan, started, t0, str(exc), who=who))
        except Exception as exc:
            # The failure is logged once, capped, by _save_failure; the traceback only at debug
            # level: a hostile input's exception text can be megabytes.
            log.debug("source %s raised", plan.id, exc_info=True)
            return self._save_failure(self._failure(plan, started, t0, f"{type(exc).__name__}: {exc}", who=who))
        record = RunRecord(
            plan.project,
            plan.source,
            plan.kind,
            started,
            time.perf_counter() - t0,
            "ok",
            samples=len(samples),
            events=len(events),
            worker=who.worker,
            job_id=who.job_id,
        )
        try:
            with write_tx(self.store.engine) as conn:
                self.store.samples.append(samples, conn)
                self.store.events.add(events, conn)
                self.store.sources.record(record, result.checkpoint, conn)
        except Exception as exc:
            log.debug("storing the output of %s failed", plan.id, exc_info=True)
            return self._save_failure(self._failure(plan, started, t0, f"storing the readings failed: {exc}", who=who))
        self._notify({s.series for s in samples})
        return record

    def _bounded(self, plan: SourcePlan, ctx: CollectContext) -> CollectResult:
        box: dict[str, object] = {}

        def target() -> None:
            try:
                box["result"] = plan.collector.collect(ctx)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"collect:{plan.id}", daemon=True)
        thread.start()
        self._wait(thread, plan.timeout_seconds)
        if thread.is_alive() and self.stopping.is_set():
            raise SourceError("cancelled: mlmon is shutting down")
        if thread.is_alive():
            with self._lock:
                self._hung[plan.id] = _Hung(thread, ctx.now)
            raise _Timeout
        error = box.get("error")
        if isinstance(error, Exception):
            raise error
        if isinstance(error, BaseException):
            # SystemExit & co. raised inside the collector's thread: a failure of this source,
            # not a reason to take the scheduler's worker (or `collect --once`) down with it.
            raise SourceError(f"collector raised {type(error).__name__}: {error}")
        result = box.get("result")
        if not isinstance(result, CollectResult):
            raise GarbageOutput(f"collector returned {type(result).__name__}, expected a CollectResult")
        return result

    def _wait(self, thread: threading.Thread, timeout: float) -> None:
        """Join the collector's thread within `timeout`, or STOP_GRACE_SECONDS after a stop."""
        deadline = time.monotonic() + timeout
        stop_deadline: float | None = None
        while thread.is_alive():
            now = time.monotonic()
            if self.stopping.is_set() and stop_deadline is None:
                stop_deadline = now + STOP_GRACE_SECONDS
            end = min(deadline, stop_deadline) if stop_deadline is not None else deadline
            if now >= end:
                return
            thread.join(min(0.1, end - now))

    def _still_hung(self, plan_id: str) -> datetime | None:
        with self._lock:
            hung = self._hung.get(plan_id)
            if hung is None:
                return None
            if hung.thread.is_alive():
                return hung.since
            del self._hung[plan_id]
            return None

    def _failure(
        self,
        plan: SourcePlan,
        started: datetime,
        t0: float,
        error: str,
        outcome: str = "failed",
        who: _Who | None = None,
    ) -> RunRecord:
        who = who or _Who(None, None)
        return RunRecord(
            plan.project,
            plan.source,
            plan.kind,
            started,
            time.perf_counter() - t0,
            outcome,
            cap_text(error),
            worker=who.worker,
            job_id=who.job_id,
        )

    def _save_failure(self, record: RunRecord) -> RunRecord:
        log.warning("source %s/%s %s: %s", record.project, record.source, record.outcome, record.error)
        try:
            self.store.sources.record(record)
        except Exception:
            log.exception("recording the failure of %s/%s failed", record.project, record.source)
        return record

    def _notify(self, keys: set[SeriesKey]) -> None:
        if not keys:
            return
        for listener in list(self.listeners):
            try:
                listener(keys)
            except Exception:
                log.exception("ingest listener failed")


class _Timeout(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Who:
    worker: str | None
    job_id: int | None


def _validate(plan: SourcePlan, result: CollectResult, now: datetime) -> tuple[list[Sample], list[Event]]:
    """Turn a result into samples and events of the plan's project, or raise GarbageOutput."""
    if not isinstance(result.readings, list) or not isinstance(result.events, list):
        raise GarbageOutput("readings and events must be lists")
    if len(result.readings) > MAX_READINGS_PER_RUN:
        raise GarbageOutput(f"{len(result.readings)} readings in one run; the limit is {MAX_READINGS_PER_RUN}")
    now_ms = ms_from_datetime(now)
    latest_ms = ms_from_datetime(now + FUTURE_TOLERANCE)
    samples: list[Sample] = []
    for index, reading in enumerate(result.readings):
        if not isinstance(reading, Reading):
            raise GarbageOutput(f"reading {index} is a {type(reading).__name__}, expected a Reading")
        samples.append(_sample(plan.project, index, reading, now_ms, latest_ms))
    events = [_event(plan, index, draft, now_ms, latest_ms) for index, draft in enumerate(result.events)]
    if result.checkpoint is not None:
        try:
            json.dumps(dict(result.checkpoint), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise GarbageOutput(f"checkpoint is not JSON-serialisable: {exc}") from None
    return samples, events


def _event(plan: SourcePlan, index: int, draft: object, now_ms: int, latest_ms: int) -> Event:
    if not isinstance(draft, EventDraft):
        raise GarbageOutput(f"event {index} is a {type(draft).__name__}, expected an EventDraft")
    for name, limit in (("kind", MAX_EVENT_KIND), ("subject", MAX_EVENT_SUBJECT)):
        value = getattr(draft, name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise GarbageOutput(f"event {index}: {name} must be a string of 1 to {limit} characters")
    for name in ("old", "new", "message"):
        if not isinstance(getattr(draft, name), str | None):
            raise GarbageOutput(f"event {index}: {name} must be a string")
    labels = dict(draft.labels)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise GarbageOutput(f"event {index}: labels must map strings to strings")
    ts = now_ms
    if draft.ts is not None:
        if not isinstance(draft.ts, datetime) or draft.ts.tzinfo is None:
            raise GarbageOutput(f"event {index}: ts must be an aware datetime")
        ts = ms_from_datetime(draft.ts)
        if ts < 0 or ts > latest_ms:
            raise GarbageOutput(f"event {index}: timestamp {draft.ts.isoformat()} is out of range")
    return Event(plan.project, ts, draft.kind, draft.subject, draft.old, draft.new, draft.message, plan.source, labels)


def _sample(project: str, index: int, reading: Reading, now_ms: int, latest_ms: int) -> Sample:
    problem = metric_name_problem(reading.metric) if isinstance(reading.metric, str) else "metric is not a string"
    if problem:
        raise GarbageOutput(f"reading {index}: {problem}")
    labels = dict(reading.labels)
    found = labels_problem(labels)
    if found:
        raise GarbageOutput(f"reading {index} ({reading.metric}): {found[0]}: {found[1]}")
    value = reading.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GarbageOutput(f"reading {index} ({reading.metric}): value {value!r} is not a finite number")
    ts_ms = now_ms
    if reading.ts is not None:
        if not isinstance(reading.ts, datetime) or reading.ts.tzinfo is None:
            raise GarbageOutput(f"reading {index} ({reading.metric}): ts must be an aware datetime")
        ts_ms = ms_from_datetime(reading.ts.astimezone(UTC))
        if ts_ms < 0 or ts_ms > latest_ms:
            raise GarbageOutput(
                f"reading {index} ({reading.metric}): timestamp {reading.ts.isoformat()} is out of range"
            )
    return Sample(SeriesKey(project, reading.metric, labels_of(labels)), ts_ms, float(value))
