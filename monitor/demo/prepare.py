"""Everything `mlmon demo` does before serving: the data directory, its files, the configuration,
the store's schema and the quality history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.demo import history
from monitor.demo.config import demo_config
from monitor.demo.files import anchor, check_data_dir, write_config, write_focus, write_lockfiles
from monitor.demo.fleet import FLEET
from monitor.demo.seed import push_events, push_history
from monitor.store.store import Store

DEFAULT_DATA_DIR = Path(".mlmon-demo")


def self_address(listen: str) -> str:
    """Where mlmon reaches itself: the listen address, with a wildcard host made loopback."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"{host}:{port}"


@dataclass(frozen=True)
class DemoSetup:
    data: Path
    config: Path
    database_url: str
    anchor: datetime
    first_start: bool


def prepare_files(data_dir: Path, listen: str, now: datetime) -> DemoSetup:
    """Check the directory and (re)write the bill, the lock files and the configuration."""
    data = check_data_dir(data_dir)
    story, first = anchor(data, now)
    write_lockfiles(data, FLEET)
    write_focus(data, FLEET, now)
    config = write_config(data, demo_config(FLEET, self_address(listen), data))
    return DemoSetup(data, config, f"sqlite:///{data / 'mlmon.db'}", story, first)


def seed_store(store: Store, setup: DemoSetup, now: datetime) -> int:
    """Push the last HISTORY of evaluations (again: the same values), and on the first start the
    model version changes; the count of samples pushed."""
    pushed = push_history(store, FLEET, setup.anchor, now - history.HISTORY, now)
    if setup.first_start:
        push_events(store, FLEET, setup.anchor, now)
    return pushed
