"""One process's link to the job queue: an event loop in its own thread holding procrastinate's
App and connection pool. The leader enqueues due runs and reaps stalled ones through it; with
queues to serve, it also runs a procrastinate worker whose jobs call `execute` in a thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import procrastinate
from procrastinate import exceptions as pq_errors
from procrastinate.jobs import Job, Status
from procrastinate.worker import Worker

from monitor.workqueue.names import QUEUE_SCHEMA, TASK, conninfo, lock_of
from monitor.workqueue.slots import RunSlots, SlotJobManager

log = logging.getLogger("mlmon.workqueue")

ANALYZE_BASE_ROWS = 50
ANALYZE_SHARE = 0.1
"""PostgreSQL's own autovacuum_analyze_threshold and autovacuum_analyze_scale_factor defaults."""
_CHANGED_SINCE_ANALYZE = (
    "SELECT s.n_mod_since_analyze AS changed, c.reltuples AS rows FROM pg_stat_user_tables s "
    "JOIN pg_class c ON c.oid = s.relid WHERE s.relid = 'procrastinate_jobs'::regclass"
)

T = TypeVar("T")

Execute = Callable[[str, int, str, int, Callable[[], None]], None]
"""(source id, job id, due time, earlier attempts, collected) -> None: run the source once (in a
worker thread), calling `collected()` once its collection has ended and only storing is left."""


@dataclass(frozen=True)
class NodeOptions:
    name: str
    queues: Sequence[str] = ()
    """Queues this process serves; empty: it only enqueues (an API replica's leader)."""
    concurrency: int = 8
    heartbeat_seconds: float = 10.0
    stalled_seconds: float = 60.0
    poll_seconds: float = 5.0
    """How often an idle worker looks for jobs whose notification it missed."""

    @property
    def jobs_held(self) -> int:
        """Jobs procrastinate holds at most: the runs collecting, and as many again still storing
        after their slot was freed (slots.py)."""
        return 2 * self.concurrency

    @property
    def job_threads(self) -> int:
        """Threads (and fence connections) for those jobs, and two spare."""
        return self.jobs_held + 2


@dataclass(frozen=True)
class ReapReport:
    retried: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


async def _autocommit(connection: Any) -> None:
    # procrastinate sends one statement (a function call) per operation: no transaction needed,
    # and autocommit saves the COMMIT round trip on every fetch and finish.
    await connection.set_autocommit(True)


def _autocommit_sync(connection: Any) -> None:
    connection.autocommit = True


class QueueNode:
    def __init__(
        self,
        database_url: str,
        options: NodeOptions,
        execute: Execute | None = None,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            # two INFO lines per job drown everything else at hundreds of runs a second; each
            # run's outcome is in source_runs and mlmon's own log already
            logging.getLogger("procrastinate").setLevel(logging.WARNING)
        self.options = options
        self._execute = execute
        self._on_stopped = on_stopped
        connector = procrastinate.PsycopgConnector(
            conninfo=conninfo(database_url),
            kwargs={"options": f"-c search_path={QUEUE_SCHEMA}", "application_name": f"mlmon {options.name}"},
            configure=_autocommit,
            min_size=1,
            # one connection per held job's fetch or finish, and spares
            max_size=max(4, options.job_threads),
        )
        self.app = procrastinate.App(connector=connector)
        self.app.task(name=TASK, pass_context=True)(self._run_job)
        self._slots = RunSlots(options.concurrency)
        self.app.job_manager = SlotJobManager(self.app.job_manager, self._slots)
        # The leader enqueues from the scheduler's threads on a pool of its own: through the event
        # loop, each enqueue waited behind the jobs' callbacks, and a busy worker fell behind its
        # own schedule.
        self._enqueuer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(
                conninfo=conninfo(database_url),
                kwargs={"options": f"-c search_path={QUEUE_SCHEMA}", "application_name": f"mlmon {options.name}"},
                configure=_autocommit_sync,
                min_size=1,
                max_size=4,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: Worker | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="queue-node", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        try:
            self._enqueuer.open()
        except Exception as exc:
            raise RuntimeError(f"the job queue could not be opened: {exc}") from exc
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the job queue did not open in time")
        if self._failed is not None:
            raise RuntimeError(f"the job queue could not be opened: {self._failed}") from self._failed

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking jobs, let the running ones finish, unregister, close the pools."""
        self._enqueuer.close()
        try:
            self._stop_serving(timeout)
        finally:
            if self._on_stopped is not None:
                self._on_stopped()

    def _stop_serving(self, timeout: float) -> None:
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return
        loop.call_soon_threadsafe(self._slots.stop)
        if self._worker is not None:
            self._worker.stop()  # type: ignore[no-untyped-call] # thread-safe: it schedules itself on the worker's loop
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    @property
    def worker_id(self) -> int | None:
        return self._worker.worker_id if self._worker is not None else None

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        # runs are made in the loop's default executor, a thread per held job
        loop.set_default_executor(ThreadPoolExecutor(self.options.job_threads, thread_name_prefix="queue-job"))
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            if not self._ready.is_set():
                self._failed = exc
                self._ready.set()
            else:
                log.exception("the job queue stopped")
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        await self.app.open_async()
        try:
            if self.options.queues and self._execute is not None:
                self._worker = Worker(
                    app=self.app,
                    queues=list(self.options.queues),
                    name=self.options.name,
                    concurrency=self.options.jobs_held,
                    install_signal_handlers=False,
                    update_heartbeat_interval=self.options.heartbeat_seconds,
                    stalled_worker_timeout=self.options.stalled_seconds,
                    fetch_job_polling_interval=self.options.poll_seconds,
                    abort_job_polling_interval=max(self.options.poll_seconds, 5.0),
                )
                run = asyncio.create_task(self._worker.run())  # type: ignore[no-untyped-call]
                await asyncio.sleep(0)
                self._ready.set()
                await run
            else:
                self._ready.set()
                await self._stop.wait()
        finally:
            await self.app.close_async()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the job queue is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # --- the leader's side ------------------------------------------------------------------------

    def enqueue(self, plan_id: str, queue: str, due: datetime) -> int | None:
        """Queue one run of `plan_id`; None when a run of it is already waiting (it will do)."""
        lock = lock_of(plan_id)
        deferrer = self._enqueuer.configure_task(TASK, lock=lock, queueing_lock=lock, queue=queue)
        try:
            return deferrer.defer(source=plan_id, due=due.isoformat())
        except pq_errors.AlreadyEnqueued:
            return None

    def enqueue_many(self, due: Sequence[tuple[str, str, datetime]]) -> tuple[int, int]:
        """Queue one run of each `(source id, queue, due)` in one statement, leaving out sources
        whose previous run still waits; (queued, left out)."""
        if not due:
            return 0, 0
        connector = self._enqueuer.connector.get_sync_connector()
        locks = [lock_of(plan_id) for plan_id, _, _ in due]
        waiting = {
            row["queueing_lock"]
            for row in connector.execute_query_all(
                "SELECT queueing_lock FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = ANY(%(locks)s)",
                locks=locks,
            )
        }
        fresh = [(plan_id, queue, when) for plan_id, queue, when in due if lock_of(plan_id) not in waiting]
        jobs = [
            Job(
                id=None,
                queue=queue,
                lock=lock_of(plan_id),
                queueing_lock=lock_of(plan_id),
                task_name=TASK,
                task_kwargs={"source": plan_id, "due": when.isoformat()},
            )
            for plan_id, queue, when in fresh
        ]
        try:
            self._enqueuer.job_manager.batch_defer_jobs(jobs)
            queued = len(jobs)
        except pq_errors.AlreadyEnqueued:
            # the reaper put a stalled run back in between: queue the others one by one
            queued = sum(self.enqueue(plan_id, queue, when) is not None for plan_id, queue, when in fresh)
        return queued, len(due) - queued

    def reap(self) -> ReapReport:
        """Retry once each run whose worker stopped heartbeating; fail it the second time."""
        return self._call(self._reap())

    async def _reap(self) -> ReapReport:
        manager = self.app.job_manager
        retried: list[int] = []
        failed: list[int] = []
        stalled = await manager.get_stalled_jobs(task_name=TASK, seconds_since_heartbeat=self.options.stalled_seconds)
        for job in stalled:
            assert job.id is not None
            source = job.task_kwargs.get("source")
            if job.attempts == 0:
                try:
                    await manager.retry_job(job)
                    retried.append(job.id)
                    log.warning("run of %s (job %d) lost its worker; retrying it once", source, job.id)
                    continue
                except pq_errors.UniqueViolation:
                    # A newer run of the same source is already waiting (it holds the queueing
                    # lock, procrastinate#1446): that one replaces the lost run.
                    why = "a newer run of it is queued and replaces it"
            else:
                why = "it was retried once already"
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            failed.append(job.id)
            log.error("run of %s (job %d) lost its worker; marked failed: %s", source, job.id, why)
        return ReapReport(tuple(retried), tuple(failed))

    def prune(self, hours: int) -> None:
        """Forget finished jobs older than `hours` (source_runs keeps the history), then vacuum
        the queue's tables: on a server whose autovacuum is off, nothing else reclaims them."""
        self._call(
            self.app.job_manager.delete_old_jobs(
                nb_hours=hours, include_failed=True, include_cancelled=True, include_aborted=True
            ),
            timeout=300.0,
        )
        connector = self._enqueuer.connector.get_sync_connector()
        connector.execute_query("VACUUM (ANALYZE) procrastinate_jobs, procrastinate_events")

    def keep_statistics(self) -> bool:
        """ANALYZE the jobs table when it changed as much as makes autovacuum analyze it (50 rows
        plus 10% of the table); True when it did. procrastinate's fetch is planned from these
        statistics: on a table never analyzed (autovacuum off, or not yet awake after a burst)
        the fetch took 60 ms with 10,000 runs queued instead of 0.5 ms."""
        connector = self._enqueuer.connector.get_sync_connector()
        row = connector.execute_query_one(_CHANGED_SINCE_ANALYZE)
        if row["changed"] <= ANALYZE_BASE_ROWS + ANALYZE_SHARE * max(row["rows"], 0.0):
            return False
        connector.execute_query("ANALYZE procrastinate_jobs")
        return True

    # --- the worker's side --------------------------------------------------------------------------

    async def _run_job(self, context: procrastinate.JobContext, source: str, due: str) -> None:
        # An async task handing the run to the loop's executor itself: procrastinate's path for a
        # sync task (asgiref's sync_to_async) cost 0.3 ms each way of every run, measured under load.
        assert self._execute is not None and context.job.id is not None
        loop = asyncio.get_running_loop()
        freed = False

        def free() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self._slots.give_back()

        def collected() -> None:  # called from the run's thread
            loop.call_soon_threadsafe(free)

        try:
            await loop.run_in_executor(
                None, self._execute, source, context.job.id, due, context.job.attempts, collected
            )
        finally:
            free()
