"""The store as one object: an engine and the table groups built on it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from monitor.store.changes import ChangeLog
from monitor.store.db import make_engine
from monitor.store.events import EventStore
from monitor.store.samples import SampleStore
from monitor.store.sources import SourceStore


@dataclass
class Store:
    engine: Engine
    samples: SampleStore
    events: EventStore
    sources: SourceStore
    changes: ChangeLog

    @classmethod
    def open(cls, url: str) -> Store:
        return cls.on(make_engine(url))

    @classmethod
    def on(cls, engine: Engine) -> Store:
        return cls(engine, SampleStore(engine), EventStore(engine), SourceStore(engine), ChangeLog(engine))

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()
