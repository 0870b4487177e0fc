"""Run slots: a worker takes a job only when it has a slot to run it in, and frees the slot the
moment the run's collection has ended, while its outcome is stored and procrastinate records the
job as finished.

procrastinate frees a job's place in its worker only after the job's status is written, so with
its concurrency as the number of runs, each run slot waited for the run's writes and that finish
(1.3 ms) before fetching the next job. Here procrastinate may hold twice as many jobs as there are
slots (the runs collecting and those storing), but its fetch first waits for a free slot: the next
run's fetch and start overlap the previous run's writes. No job is fetched ahead of a free slot, so
a long GPU evaluation never keeps a second one waiting on its worker while another worker could
run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from procrastinate.jobs import Job
from procrastinate.manager import JobManager


class RunSlots:
    """`size` runs at a time; created and used on the queue's event loop."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)
        self._stopping = asyncio.Event()

    async def take(self) -> bool:
        """Wait for a free slot; False when the worker stops first (then nothing is taken)."""
        if self._stopping.is_set():
            return False
        taking = asyncio.ensure_future(self._free.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({taking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            taking.cancel()  # no-op once acquired; otherwise the slot is not taken later behind our back
        got = taking.done() and not taking.cancelled()
        if got and self._stopping.is_set():
            self._free.release()
            return False
        return got

    def give_back(self) -> None:
        self._free.release()

    def stop(self) -> None:
        self._stopping.set()


class SlotJobManager(JobManager):
    """procrastinate's job manager, fetching a job only once a run slot is free for it."""

    def __init__(self, manager: JobManager, slots: RunSlots) -> None:
        super().__init__(manager.connector)
        self.slots = slots

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> Job | None:
        if not await self.slots.take():
            return None
        try:
            job = await super().fetch_job(queues, worker_id)
        except BaseException:
            self.slots.give_back()
            raise
        if job is None:
            self.slots.give_back()
        return job
