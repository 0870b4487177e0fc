"""Run slots: a worker collects at most `concurrency` runs at once, takes a job only when a slot is
free for it (a long run never holds a second job hostage), and frees the slot once the run's
collection ended, while its outcome and the job's finish are still being written. The slot logic
alone on asyncio, then a real QueueNode on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from monitor.store.db import make_engine
from monitor.workqueue.names import QUEUE_SCHEMA
from monitor.workqueue.node import NodeOptions, QueueNode
from monitor.workqueue.slots import RunSlots
from tests.support.peers import wait_until


def test_a_take_waits_for_a_slot_given_back() -> None:
    async def scenario() -> list[str]:
        slots = RunSlots(1)
        seen: list[str] = []
        assert await slots.take()

        async def second() -> None:
            seen.append("second waits")
            assert await slots.take()
            seen.append("second runs")

        task = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        seen.append("first gives back")
        slots.give_back()
        await task
        return seen

    assert asyncio.run(scenario()) == ["second waits", "first gives back", "second runs"]


def test_stopping_wakes_a_waiting_take_without_taking_a_slot() -> None:
    async def scenario() -> tuple[bool, bool]:
        slots = RunSlots(1)
        assert await slots.take()
        waiting = asyncio.create_task(slots.take())
        await asyncio.sleep(0.05)
        slots.stop()
        woken = await waiting
        return woken, await slots.take()

    assert asyncio.run(scenario()) == (False, False)


def _statuses(url: str) -> dict[str, str]:
    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT args->>'source', status FROM {QUEUE_SCHEMA}.procrastinate_jobs"))
            return {str(source): str(status) for source, status in rows}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_runs_never_exceed_the_slots_and_each_job_runs_once(queue_db: str) -> None:
    lock = threading.Lock()
    running, most, ran = 0, 0, []

    def execute(source: str, job_id: int, due: str, attempts: int, collected: Callable[[], None]) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.03)
        with lock:
            running -= 1
            ran.append(source)
        collected()

    node = QueueNode(queue_db, NodeOptions(name="w", queues=("default",), concurrency=2, poll_seconds=0.2), execute)
    node.start()
    try:
        now = datetime.now(UTC)
        node.enqueue_many([(f"p/s{i}", "default", now) for i in range(40)])
        wait_until(lambda: len(ran) == 40, timeout=60, interval=0.1)
        wait_until(lambda: set(_statuses(queue_db).values()) == {"succeeded"}, timeout=30, interval=0.2)
    finally:
        node.stop()
    assert sorted(ran) == sorted(f"p/s{i}" for i in range(40))
    assert most == 2  # procrastinate holds up to 4 jobs, but only the 2 slots run


@pytest.mark.postgres
def test_a_long_run_does_not_hold_the_next_job_hostage(queue_db: str) -> None:
    started = threading.Event()
    release = threading.Event()

    def execute(source: str, job_id: int, due: str, attempts: int, collected: Callable[[], None]) -> None:
        if source == "gpu/long":
            started.set()
            release.wait(30)
        collected()

    node = QueueNode(queue_db, NodeOptions(name="gpu-1", queues=("gpu",), concurrency=1, poll_seconds=0.2), execute)
    node.start()
    try:
        node.enqueue_many([("gpu/long", "gpu", datetime.now(UTC))])
        assert started.wait(30)
        node.enqueue_many([("gpu/next", "gpu", datetime.now(UTC))])
        time.sleep(1.0)  # a worker that prefetched would have marked it doing by now
        assert _statuses(queue_db)["gpu/next"] == "todo"  # another GPU worker may still take it
        release.set()
        wait_until(lambda: _statuses(queue_db) == {"gpu/long": "succeeded", "gpu/next": "succeeded"}, timeout=30)
    finally:
        release.set()
        node.stop()


@pytest.mark.postgres
def test_the_next_run_starts_while_the_previous_one_is_still_storing(queue_db: str) -> None:
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def execute(source: str, job_id: int, due: str, attempts: int, collected: Callable[[], None]) -> None:
        with lock:
            events.append(("start", source))
        collected()  # the collection is over; storing its outcome takes a while
        time.sleep(1.0 if source == "p/first" else 0.0)
        with lock:
            events.append(("stored", source))

    node = QueueNode(queue_db, NodeOptions(name="w", queues=("default",), concurrency=1, poll_seconds=0.2), execute)
    node.start()
    try:
        now = datetime.now(UTC)
        node.enqueue_many([("p/first", "default", now)])
        wait_until(lambda: ("start", "p/first") in events, timeout=30, interval=0.05)
        node.enqueue_many([("p/second", "default", now)])
        wait_until(lambda: len(events) == 4, timeout=30, interval=0.05)
    finally:
        node.stop()
    assert events.index(("start", "p/second")) < events.index(("stored", "p/first"))


@pytest.mark.postgres
def test_a_run_that_never_reports_its_collection_frees_its_slot_when_it_returns(queue_db: str) -> None:
    ran: list[str] = []

    def execute(source: str, job_id: int, due: str, attempts: int, collected: Callable[[], None]) -> None:
        ran.append(source)  # e.g. a source this worker's configuration lacks: no collection at all
        if source == "p/fails":
            raise RuntimeError("the run failed before collecting")

    node = QueueNode(queue_db, NodeOptions(name="w", queues=("default",), concurrency=1, poll_seconds=0.2), execute)
    node.start()
    try:
        now = datetime.now(UTC)
        node.enqueue_many([("p/skipped", "default", now), ("p/fails", "default", now), ("p/last", "default", now)])
        wait_until(lambda: len(ran) == 3, timeout=30, interval=0.05)
    finally:
        node.stop()
    assert sorted(ran) == ["p/fails", "p/last", "p/skipped"]
