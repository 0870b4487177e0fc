"""The store's series-id cache on SQLite and PostgreSQL: a new series' id reaches other threads only
once the row is committed (several runs of one project's sources write a shared series at once)."""

from __future__ import annotations

import threading

from sqlalchemy import Connection, event

from monitor.core.types import Sample, SeriesKey
from monitor.store.db import write_tx
from monitor.store.store import Store

SHARED = SeriesKey("vision", "probe_value", ())


def test_another_thread_never_names_a_series_row_before_its_commit(store: Store) -> None:
    errors: list[BaseException] = []
    others: list[threading.Thread] = []

    def other_run() -> None:
        try:
            store.samples.append([Sample(SHARED, 2_000, 2.0)])
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    def while_committing(_conn: Connection) -> None:
        # SQLAlchemy's commit event comes just before the COMMIT: the other run writes the same
        # new series in this window (it waits for the row's lock, or for SQLite's write lock).
        if others:
            return
        thread = threading.Thread(target=other_run)
        others.append(thread)
        thread.start()
        thread.join(1.0)

    event.listen(store.engine, "commit", while_committing)
    try:
        with write_tx(store.engine) as conn:
            store.samples.append([Sample(SHARED, 1_000, 1.0)], conn)
    finally:
        event.remove(store.engine, "commit", while_committing)
    others[0].join(30)
    assert not others[0].is_alive()
    assert errors == []
    assert [(p.ts_ms, p.value) for p in store.samples.points(SHARED, 0, 10_000)] == [(1_000, 1.0), (2_000, 2.0)]
