"""The alert cycle of two source trees side by side on one seeded store, in CPU seconds.

On a shared, loaded machine wall-clock cycles of bench/alerts.py swing 2-4x between runs; the
CPU time of the evaluating process is far steadier. This seeds bench/alerts.py's 10,000-project
SQLite store once (with the revision both trees share), then alternates the trees (A B B A ...),
each in its own process on a copy of the store at a frozen `now`: a first cycle, then `--steady`
timed cycles. Figures only.

    .venv/bin/python bench/alerts_trees.py --other /work/main            # this tree vs main's
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
SHARED_REVISION = "0008"  # the newest revision both trees have


def seed(tree: Path, out: Path, projects: int) -> None:
    sys.path.insert(0, str(tree))
    from bench.alerts import load_cycle_data, write_cycle_config
    from monitor.store import migrate
    from monitor.store.store import Store

    write_cycle_config(out / "cycle.yaml", projects)
    store = Store.open(f"sqlite:///{out / 'cycle.db'}")
    migrate.upgrade(store.engine, SHARED_REVISION)
    now = datetime.now(UTC)
    load_cycle_data(store, projects, 24, now)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("ANALYZE")
    store.close()
    (out / "now.txt").write_text(now.isoformat())


def cycle(tree: Path, seeded: Path, work: Path, steady: int) -> None:
    sys.path.insert(0, str(tree))
    from alerts.engine import AlertEngine
    from alerts.kinds import REGISTRY
    from monitor.config.loader import load_config
    from monitor.core.clock import FrozenClock
    from monitor.runtime import config_checks
    from monitor.store.store import Store

    shutil.copy(seeded / "cycle.db", work / "cycle.db")
    config = load_config(seeded / "cycle.yaml", config_checks())
    store = Store.open(f"sqlite:///{work / 'cycle.db'}")
    clock = FrozenClock(datetime.fromisoformat((seeded / "now.txt").read_text()))
    engine = AlertEngine(store, clock, REGISTRY, lambda: config)
    engine.evaluate()
    wall, cpu = [], []
    for _ in range(steady):
        w, c = time.perf_counter(), time.process_time()
        engine.evaluate()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    store.close()
    print(json.dumps({"cpu": statistics.median(cpu), "wall": statistics.median(wall)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", type=Path, required=True, help="the other tree, e.g. /work/main")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A pairs (default 2)")
    parser.add_argument("--steady", type=int, default=7)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--role", choices=["seed", "cycle"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seeded", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "seed":
        seed(args.tree, args.seeded, args.projects)
        return 0
    if args.role == "cycle":
        cycle(args.tree, args.seeded, args.work, args.steady)
        return 0
    trees = {"this": HERE, "other": args.other.resolve()}
    figures: dict[str, list[float]] = {"this": [], "other": []}
    with tempfile.TemporaryDirectory(prefix="mlmon-bench-trees-") as tmp:
        seeded = Path(tmp)
        me = [sys.executable, str(Path(__file__).resolve())]
        common = ["--other", str(args.other), "--projects", str(args.projects), "--steady", str(args.steady)]
        subprocess.run([*me, *common, "--role", "seed", "--tree", str(HERE), "--seeded", str(seeded)], check=True)
        order = ["other", "this", "this", "other"] * args.rounds
        for name in order[: 2 * args.rounds]:
            work = seeded / name
            work.mkdir(exist_ok=True)
            done = subprocess.run(
                [
                    *me,
                    *common,
                    "--role",
                    "cycle",
                    "--tree",
                    str(trees[name]),
                    "--seeded",
                    str(seeded),
                    "--work",
                    str(work),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd="/",
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            figures[name].append(result["cpu"])
            print(
                f"{name:5} {trees[name]}: steady cycle CPU median {result['cpu']:.3f} s (wall {result['wall']:.3f} s)"
            )
    this, other = statistics.median(figures["this"]), statistics.median(figures["other"])
    print(f"steady cycle CPU, median of runs: this {this:.3f} s, other {other:.3f} s, ratio {this / other:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
