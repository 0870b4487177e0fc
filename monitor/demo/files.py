"""The demo's data directory: checking it can be written, and the files the fleet's sources read.

A data directory that cannot be created or written is refused up front with its path and the
operating system's reason, before anything else is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML

from monitor.demo.config import HEADER
from monitor.demo.fleet import DemoProject
from monitor.demo.focus_export import daily_use, write_focus_csv

FOCUS_DAYS = 40
"""Days of bill: the last month and this one, enough for a 28-day forecast lookback."""
STATE_FILE = "demo-state.json"


class DataDirError(Exception):
    """The demo data directory cannot be used; the message names it and says why."""


def check_data_dir(path: Path) -> Path:
    """Create `path` if needed and prove it writable; DataDirError names it otherwise."""
    path = path.expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok\n")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataDirError(
            f"demo data directory {path} is not writable ({reason}); choose another with --data-dir or MLMON_DEMO_DIR"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"demo data directory {path} is not writable; choose another with --data-dir")
    return path


def anchor(data: Path, now: datetime) -> tuple[datetime, bool]:
    """When the demo's story is anchored (first start), and whether this start is the first."""
    state = data / STATE_FILE
    try:
        doc = json.loads(state.read_text())
        return datetime.fromisoformat(str(doc["anchor"])).astimezone(UTC), False
    except (OSError, ValueError, KeyError, TypeError):
        pass
    state.write_text(json.dumps({"anchor": now.isoformat()}) + "\n")
    return now, True


def write_lockfiles(data: Path, fleet: Sequence[DemoProject]) -> None:
    for project in fleet:
        folder = data / "repos" / project.id
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# {project.name}: the serving image's pins (demo)", *project.requirements]
        (folder / "requirements.txt").write_text("\n".join(lines) + "\n")


def write_focus(data: Path, fleet: Sequence[DemoProject], now: datetime) -> Path:
    return write_focus_csv(data / "focus" / "demo-focus.csv", daily_use(fleet, now, FOCUS_DAYS))


def write_config(data: Path, doc: dict[str, object]) -> Path:
    path = data / "mlmon.yaml"
    yaml = YAML()
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\n")
        yaml.dump(doc, handle)
    return path
