"""`focus`: FOCUS 1.0-1.2 cost and usage exports (CSV, gzipped CSV, Parquet), read incrementally.

Each run looks at the files the path names. Files already read and unchanged (same size and
modification time) are skipped; when files are new, changed or gone, the days they cover are
recomputed from every file covering them and replace what was stored (see focus_files.py), so a
re-read never double counts. Each row is attributed to a project by the first matching rule
(focus_params.py); rows no rule matches are stored as `__unattributed__`, never dropped.
Per (project, day) the source stores BilledCost and EffectiveCost, split into GPU and other
spend, GPU-seconds and row counts (layout: monitor/spend/series.py).

A file that is not valid FOCUS (missing mandatory columns, a number or date that does not
parse, two currencies) fails the run with an error naming the file, row and column; nothing of
that run is stored, and what earlier runs stored stays. `exclude` can set a bad file aside.
Every file read or gone is recorded as an event of the source's project, for auditors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from collectors.base import CollectContext, CollectResult, EventDraft, SourceError, SourceKind, env_value
from collectors.spend.daily import DailyTotals, withdrawn
from collectors.spend.focus_append import Tail, appended, edges, with_stored
from collectors.spend.focus_files import (
    Fingerprint,
    KnownFile,
    data_version,
    discover,
    plan,
    same_file,
    short,
)
from collectors.spend.focus_params import FocusParams
from collectors.spend.focus_query import read_focus_query
from collectors.spend.focus_reader import FileAggregate, FocusFileError, duckdb_missing, read_focus_file
from monitor.spend.series import SOURCE, day_start, local_day, spend_metric, zone

CHECKPOINT_VERSION = 1
FUTURE_TOLERANCE = timedelta(hours=1)
"""As the runner's: a day may start at most this far after now."""


class FocusCollector:
    def __init__(self, params: FocusParams) -> None:
        self.params = params
        self.tz = zone(params.timezone)

    def collect(self, ctx: CollectContext) -> CollectResult:
        missing = duckdb_missing()
        if missing:
            raise SourceError(missing)
        state = ctx.checkpoint if ctx.checkpoint.get("version") == CHECKPOINT_VERSION else {}
        if self.params.query is not None:
            return self._collect_query(ctx, state)
        assert self.params.path is not None
        known = {name: KnownFile.from_checkpoint(entry) for name, entry in dict(state.get("files", {})).items()}
        files = discover(self.params.path, self.params.exclude)
        today = local_day(ctx.now + FUTURE_TOLERANCE, self.tz)
        work = plan(files, known, today)
        if work.idle:
            return CollectResult()
        currency, origin = self._established(work.unchanged)
        if len(work.changed) == 1 and not work.removed:
            path = work.changed[0]
            before = known.get(str(path))
            old = appended(path, before.entry) if before is not None and not before.entry.get("pending_until") else None
            if before is not None and old is not None:
                result = self._append(ctx, path, before, old, state, today)
                if result is not None:
                    return result
        fresh: dict[str, FileAggregate] = {}
        problems: list[str] = []
        for path in work.changed:
            try:
                aggregate = self._read(path, currency, origin)
                self._check_dates(aggregate, ctx.now)
            except FocusFileError as exc:
                problems.append(str(exc))
                continue
            if currency is None and aggregate.currency is not None:
                currency, origin = aggregate.currency, f"set by {path.name}"
            fresh[str(path)] = aggregate
        if problems:
            head = f"{len(problems)} of {len(work.changed)} new or changed files rejected; nothing stored this run: "
            raise SourceError(head + " | ".join(problems))
        days = {d for d in work.old_days.union(*(a.totals.days for a in fresh.values())) if d <= today}
        totals = DailyTotals(currency or self.params.currency or "USD", self.tz)
        for aggregate in fresh.values():
            totals.merge(aggregate.totals)
        for name, before in sorted(work.unchanged.items()):
            if before.days() & days:
                totals.merge(self._read(files[name], currency, origin).totals, days)
        readings = totals.readings(ctx.source, days)
        metrics = set(totals.metrics)
        previous = state.get("currency")
        if isinstance(previous, str) and previous != totals.currency:
            metrics.add(spend_metric(previous))
        readings += withdrawn(ctx.reader, ctx.project, ctx.source, metrics, days, self.tz, readings)
        entries = {name: dict(before.entry) for name, before in work.unchanged.items()}
        entries.update({name: self._entry(files[name], agg, ctx, today) for name, agg in fresh.items()})
        return CollectResult(
            readings=readings,
            events=self._events(fresh, work.removed, ctx),
            checkpoint=self._checkpoint(entries, totals.currency),
        )

    def _append(
        self, ctx: CollectContext, path: Path, before: KnownFile, old: int, state: Mapping[str, Any], today: date
    ) -> CollectResult | None:
        """Read only the bytes appended since the last run; None when the whole file must be read
        (the new rows reach into days to come)."""
        code = before.entry.get("currency") or self.params.currency
        expected = (str(code), f"set by {path.name}, read before") if code else None
        fingerprint = Fingerprint.of(path)
        with Tail(path, old) as copy:
            try:
                tail = read_focus_file(copy, self.params, self.tz, expected)
            except FocusFileError as exc:
                row = None if exc.row is None else exc.row + int(before.entry.get("rows") or 0)
                raise SourceError(
                    "1 of 1 new or changed files rejected; nothing stored this run: "
                    + str(
                        FocusFileError(
                            str(path), f"{exc.detail} (in rows appended since the last run)", row, exc.column
                        )
                    )
                ) from None
        if not same_file(path, fingerprint):
            raise SourceError(f"{path}: the file changed while it was read; it is read again next run")
        try:
            self._check_dates(tail, ctx.now)
        except FocusFileError as exc:
            raise SourceError(f"1 of 1 new or changed files rejected; nothing stored this run: {exc}") from None
        if any(d > today for d in tail.totals.days):
            return None
        readings = with_stored(tail.totals, ctx.reader, ctx.project, ctx.source).readings(ctx.source)
        entry = dict(before.entry)
        days = sorted(set(before.days()) | tail.totals.days)
        entry.update(
            size=fingerprint.size,
            mtime_ns=fingerprint.mtime_ns,
            first_day=days[0].isoformat() if days else None,
            last_day=days[-1].isoformat() if days else None,
            rows=int(entry.get("rows") or 0) + tail.rows,
            unattributed_rows=int(entry.get("unattributed_rows") or 0) + tail.unattributed_rows,
            gpu_rows=int(entry.get("gpu_rows") or 0) + tail.gpu_rows,
            billed=round(float(entry.get("billed") or 0.0) + tail.billed, 6),
            currency=entry.get("currency") or tail.currency,
            read_at=ctx.now.isoformat(),
            read_through=today.isoformat(),
            append=edges(path, fingerprint.size),
        )
        entries = {name: dict(k.entry) for name, k in self._known(state).items()}
        entries[str(path)] = entry
        span = f"{min(tail.totals.days)}..{max(tail.totals.days)}" if tail.totals.days else "no days"
        event = EventDraft(
            "spend_file_read",
            short(str(path)),
            message=(
                f"read {tail.rows:,} rows appended to {path} for {span}, {tail.billed:,.2f} {tail.currency or ''} "
                f"billed (bytes {old:,} to {fingerprint.size:,}; the rows before were not read again)"
            ),
            labels={SOURCE: ctx.source},
        )
        return CollectResult(
            readings=readings, events=[event], checkpoint=self._checkpoint(entries, str(entry["currency"] or "USD"))
        )

    def _collect_query(self, ctx: CollectContext, state: Mapping[str, Any]) -> CollectResult:
        """The query read whole each run: the days it covers are replaced."""
        assert self.params.database_url_env is not None
        url = env_value(ctx.env, self.params.database_url_env, "the FOCUS database URL")
        expected = (self.params.currency, "params.currency") if self.params.currency else None
        aggregate = read_focus_query(url, self.params, self.tz, ctx.timeout, expected)
        self._check_dates(aggregate, ctx.now)
        today = local_day(ctx.now + FUTURE_TOLERANCE, self.tz)
        days = {d for d in aggregate.totals.days if d <= today}
        readings = aggregate.totals.readings(ctx.source, days)
        metrics = set(aggregate.totals.metrics)
        previous = state.get("currency")
        if isinstance(previous, str) and previous != aggregate.totals.currency:
            metrics.add(spend_metric(previous))
        readings += withdrawn(ctx.reader, ctx.project, ctx.source, metrics, days, self.tz, readings)
        ordered = sorted(days)
        return CollectResult(
            readings=readings,
            checkpoint={
                "version": CHECKPOINT_VERSION,
                "currency": aggregate.totals.currency,
                "horizon": ordered[-1].isoformat() if ordered else None,
                "data_version": f"query:{aggregate.rows}:{round(aggregate.billed, 6)}",
                "query": {"rows": aggregate.rows, "read_at": ctx.now.isoformat()},
            },
        )

    @staticmethod
    def _known(state: Mapping[str, Any]) -> dict[str, KnownFile]:
        return {name: KnownFile.from_checkpoint(entry) for name, entry in dict(state.get("files", {})).items()}

    def _established(self, unchanged: Mapping[str, KnownFile]) -> tuple[str | None, str]:
        """The currency files must bill in: params.currency, else that of the files kept."""
        if self.params.currency is not None:
            return self.params.currency, "params.currency"
        for name, known in sorted(unchanged.items()):
            code = known.entry.get("currency")
            if isinstance(code, str):
                return code, f"set by {Path(name).name}, read before"
        return None, ""

    def _read(self, path: Path, currency: str | None, origin: str) -> FileAggregate:
        before = Fingerprint.of(path)
        aggregate = read_focus_file(path, self.params, self.tz, (currency, origin) if currency else None)
        if not same_file(path, before):
            raise FocusFileError(str(path), "the file changed while it was read; it is read again next run")
        return aggregate

    def _check_dates(self, aggregate: FileAggregate, now: datetime) -> None:
        """Charges must start in the past; a spread charge may reach into days to come (a
        one-year commitment): those days are stored when they arrive (focus_files.plan)."""
        days = sorted(aggregate.start_days)
        if days and day_start(days[-1], self.tz) > now + FUTURE_TOLERANCE:
            raise FocusFileError(
                aggregate.path,
                f"charges dated {days[-1]} lie in the future (it is {now:%Y-%m-%d %H:%M} UTC); a cost export "
                "bills the past: check the file or this machine's clock",
                None,
                "ChargePeriodStart",
            )

    def _entry(self, path: Path, aggregate: FileAggregate, ctx: CollectContext, today: date) -> dict[str, Any]:
        fingerprint = Fingerprint.of(path)
        days = [d for d in aggregate.days if d <= today]
        later = [d for d in aggregate.days if d > today]
        return {
            "append": edges(path, fingerprint.size),
            "pending_until": later[-1].isoformat() if later else None,
            "read_through": today.isoformat(),
            "size": fingerprint.size,
            "mtime_ns": fingerprint.mtime_ns,
            "first_day": days[0].isoformat() if days else None,
            "last_day": days[-1].isoformat() if days else None,
            "rows": aggregate.rows,
            "unattributed_rows": aggregate.unattributed_rows,
            "gpu_rows": aggregate.gpu_rows,
            "projects": len(aggregate.projects),
            "billed": round(aggregate.billed, 6),
            "currency": aggregate.currency,
            "read_at": ctx.now.isoformat(),
        }

    def _checkpoint(self, entries: Mapping[str, Mapping[str, Any]], currency: str) -> dict[str, Any]:
        lasts = [e["last_day"] for e in entries.values() if e.get("last_day")]
        return {
            "version": CHECKPOINT_VERSION,
            "currency": currency,
            "horizon": max(lasts) if lasts else None,
            "data_version": data_version(entries),
            "files": dict(entries),
        }

    def _events(self, fresh: Mapping[str, FileAggregate], removed: list[str], ctx: CollectContext) -> list[EventDraft]:
        events = []
        for name, agg in sorted(fresh.items()):
            days = agg.days
            span = f"{days[0]}..{days[-1]}" if days else "no days"
            events.append(
                EventDraft(
                    "spend_file_read",
                    short(name),
                    message=(
                        f"read {name}: {agg.rows:,} rows for {span}, {agg.billed:,.2f} {agg.currency or ''} billed, "
                        f"{len(agg.projects)} projects, {agg.unattributed_rows:,} rows unattributed, "
                        f"{agg.gpu_rows:,} GPU rows"
                    ),
                    labels={SOURCE: ctx.source},
                )
            )
        events.extend(
            EventDraft(
                "spend_file_removed",
                short(name),
                message=f"{name} is gone; the days it covered were recomputed from the remaining files",
                labels={SOURCE: ctx.source},
            )
            for name in removed
        )
        return events


KIND = SourceKind(
    "focus",
    FocusParams,
    FocusCollector,
    "FOCUS cost and usage exports (CSV, gzip, Parquet): spend per project per day, GPU spend apart",
)
