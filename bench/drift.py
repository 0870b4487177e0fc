"""Drift benchmark: mlmon's distribution comparison and change detectors beside Evidently and River.

(a) Reference vs current, 100,000 rows x 20 numeric columns: c00-c09 identical N(0, 1), c10-c14
    shifted by a negligible 0.02 sd, c15-c19 by a real 0.25 sd. In one run, on the same data:
    - library path: mlmon profiles (bins, sorts) the reference and compares the current batch with
      the `distribution` rule's statistics and default verdict;
    - API path, end to end: a running `mlmon serve` (SQLite) receives the reference and then the
      current batch as Arrow IPC bodies over HTTP (client-side encoding included), stores both,
      and answers each column's statistics;
    - per batch with the reference cached: the current batch alone, library and API;
    - Evidently 0.7 `DataDriftPreset()` (its defaults) on the same arrays, in a subprocess of its
      venv. Goal: both paths >= 20x faster than Evidently end to end, and the same verdicts.
    On a shared machine the load changes within a minute, so this is done in `--rounds` rounds
    (default 3), each timing mlmon's two paths and then Evidently (the API on a fresh database and
    server each round): each round's ratio compares times taken under about the same load, and
    the median round is the figure.

(b) Change detectors vs River's ADWIN(delta=0.002) on three kinds of stream, 200 streams without a
    change (false alarms) and 200 with one (delay), fixed seeds:
    - Gaussian: N(0, 1), 3,000 points, -0.5 sd from point 1,000 (mlmon: normal CUSUM, defaults);
    - 0/1 outcomes: Bernoulli 0.90 -> 0.85 at 3,000 of 10,000 (mlmon: binomial CUSUM, defaults,
      n = 1 a point);
    - rolling window: the accuracy over the last 12 polls of 100 examples each, polled every poll,
      0.90 -> 0.85 at poll 600 of 2,000 (mlmon: binomial CUSUM with `window` = 12 polls; ADWIN fed
      every poll). Goal: mean delay <= ADWIN's with false alarms <= ADWIN's.

Evidently and River live in their own venv (their pins would fight mlmon's); .ci/run builds it:

    python3 -m venv .venv-evidently
    .venv-evidently/bin/pip install evidently==0.7.23 river==0.26.1 'pandas<3'

    .venv/bin/python bench/drift.py                       # everything
    .venv/bin/python bench/drift.py --rows 20000 --streams 50
    .venv/bin/python bench/drift.py --bench-python /path/to/python   # another venv with the peers

Data goes to the peers through .npy / .npz files in a temporary directory. Figures are printed,
never asserted: the machines are noisy. The same file runs the peers (`--peer evidently|river`),
so that mode imports nothing of mlmon.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_PYTHON = Path(os.environ.get("MLMON_TEST_EVIDENTLY_PYTHON") or REPO / ".venv-evidently" / "bin" / "python")
COLUMNS = 20


# --- peers (run inside the bench venv; no mlmon imports) ------------------------------------------


def _peer_evidently(data: Path) -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    arrays = np.load(data)
    names = [f"c{i:02d}" for i in range(arrays["reference"].shape[1])]
    reference = pd.DataFrame(arrays["reference"], columns=names)
    current = pd.DataFrame(arrays["current"], columns=names)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    result = snapshot.dict()
    seconds = time.perf_counter() - started
    drifted, values = [], {}
    for metric in result["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        # Evidently: a distance drifts at or above its threshold, a p-value below it.
        is_p_value = "p_value" in config["method"].lower() or "test" in config["method"].lower()
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(config["column"])
        values[config["column"]] = value
        method = config["method"]
    return {"seconds": seconds, "drifted": sorted(drifted), "values": values, "method": method}


def _peer_river(streams: Path) -> dict[str, Any]:
    import numpy as np
    from river.drift import ADWIN

    arrays = np.load(streams)
    out: dict[str, list[list[int]]] = {}
    started = time.perf_counter()
    points = 0
    for name in arrays.files:
        found = []
        for row in arrays[name]:
            detector = ADWIN(delta=0.002)
            detections = []
            for index, x in enumerate(row.tolist()):
                detector.update(x)
                if detector.drift_detected:
                    detections.append(index)
            found.append(detections)
            points += row.size
        out[name] = found
    return {"seconds": time.perf_counter() - started, "detections": out, "points": points}


# --- mlmon ---------------------------------------------------------------------------------------


def _mlmon_batch(reference: Any, current: Any) -> dict[str, Any]:
    from alerts.kinds.quality.distribution import DistributionParams
    from monitor.quality.drift import adjust_p_values, compare, numeric_profile

    params = DistributionParams()
    thresholds = params.thresholds()
    names = [f"c{i:02d}" for i in range(reference.shape[1])]
    started = time.perf_counter()
    profiles = [numeric_profile(reference[:, j], bins=10) for j in range(reference.shape[1])]
    fitted = time.perf_counter()
    drifts = [compare(profiles[j], numeric_profile(current[:, j])) for j in range(current.shape[1])]
    adjusted = adjust_p_values([d.p_value for d in drifts], params.correction)
    drifted, values = [], {}
    for name, drift, p in zip(names, drifts, adjusted, strict=True):
        stats = drift.statistics()
        values[name] = stats
        if thresholds.exceeded(stats) and thresholds.p_value is not None and p < thresholds.p_value:
            drifted.append(name)
    done = time.perf_counter()
    return {"seconds": done - started, "fit_seconds": fitted - started, "compare_seconds": done - fitted,
            "drifted": drifted, "values": values}  # fmt: skip


API_CONFIG = """
projects:
  - id: bench
    owners: [{name: Ada, email: ada@example.com}]
quality:
  distributions: {max_values_per_column: 2000000}
rules:
  - {name: drift, kind: distribution, for: 0s, params: {dataset: features}}
"""


def _arrow_table(array: Any) -> Any:
    """The client's in-memory table (as Evidently gets its DataFrames, built before any timer)."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped]

    columns = np.ascontiguousarray(array.T)
    return pa.table({f"c{j:02d}": pa.array(columns[j]) for j in range(columns.shape[0])})


def _arrow_body(table: Any) -> bytes:
    """The table as an Arrow IPC stream (inside the timer: the client's part of the API path)."""
    import io

    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=65_536)
    return sink.getvalue()


def _mlmon_api(reference: Any, current: Any, workdir: Path) -> dict[str, Any]:
    """Reference then current batch through a running `mlmon serve`, as Arrow IPC over HTTP."""
    import httpx

    from bench.support import admin_token, mlmon, mlmon_serve

    config = workdir / "mlmon.yaml"
    config.write_text(API_CONFIG)
    database = f"sqlite:///{workdir / 'bench.db'}"
    mlmon("migrate", database_url=database, config=config)
    token = admin_token(database, config)
    with mlmon_serve(database, config, workdir / "serve.log") as url, httpx.Client(timeout=600) as client:
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/vnd.apache.arrow.stream"}

        def post(table: Any, role: str, dataset: str) -> dict[str, Any]:
            response = client.post(
                f"{url}/api/v1/quality/distributions", content=_arrow_body(table), headers=headers,
                params={"project": "bench", "dataset": dataset, "role": role},
            )  # fmt: skip
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        ref_table, cur_table = _arrow_table(reference), _arrow_table(current)
        post(ref_table.slice(0, 1000), "reference", "warmup")  # the first request's imports are not the path
        post(cur_table.slice(0, 1000), "current", "warmup")
        started = time.perf_counter()
        post(ref_table, "reference", "features")
        stored = time.perf_counter()
        answer = post(cur_table, "current", "features")
        done = time.perf_counter()
        again = time.perf_counter()
        post(cur_table, "current", "features")  # the reference is now decoded and cached
        cached = time.perf_counter() - again
    return {"seconds": done - started, "reference_seconds": stored - started, "current_seconds": done - stored,
            "cached_seconds": cached, "columns": answer["columns"]}  # fmt: skip


def _mlmon_streams(kind: str, streams: Any, change_at: int | None) -> tuple[list[list[int]], float, int]:
    """Detections of the `change` rule's detectors on each stream (indexes of the alarms)."""
    from alerts.kinds.quality.change import ChangeParams, thin_to_windows
    from monitor.quality.binomial import BinomialCusum
    from monitor.quality.detector import CusumDetector
    from monitor.store.interface import Point

    out: list[list[int]] = []
    started = time.perf_counter()
    points = 0
    for row in streams:
        values = row.tolist()
        points += len(values)
        if kind == "gaussian":
            params = ChangeParams(metric="accuracy")
            detector = CusumDetector(params.shift, params.side_arl, params.warmup)
            changes = detector.run(values, list(range(len(values))))
            out.append([c.detected_ts for c in changes if c.direction == "down"])
            continue
        params = ChangeParams(metric="accuracy", examples_metric="accuracy_examples")
        binomial = BinomialCusum(params.drop, params.side_arl, params.warmup_examples)
        if kind == "bernoulli":
            changes = binomial.run(values, [1.0] * len(values), list(range(len(values))))
        else:
            kept, _ = thin_to_windows([Point(i, v) for i, v in enumerate(values)], -1, ROLLING_WINDOW)
            changes = binomial.run([p.value for p in kept], [100.0 * ROLLING_WINDOW] * len(kept),
                                   [p.ts_ms for p in kept])  # fmt: skip
        out.append([c.detected_ts for c in changes if c.direction == "down"])
    return out, time.perf_counter() - started, points


ROLLING_WINDOW = 12


def _peer(python: Path, mode: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--peer", mode, str(path)],
        capture_output=True, text=True, timeout=3600, env={**os.environ, "DO_NOT_TRACK": "1"},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{mode} peer failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _stream_figures(detections: list[int], change_at: int) -> tuple[int | None, int, int]:
    before = [d for d in detections if d < change_at]
    after = [d for d in detections if d >= change_at]
    return (after[0] - change_at if after else None), len(before), len(after)


def run_batch(rows: int, python: Path | None, workdir: Path, rounds: int) -> None:
    """Each round measures mlmon's library path, its API path and Evidently one after the other,
    so that each round's ratios compare times taken under about the same load; the summary gives
    the median round and the range."""
    import statistics

    import numpy as np

    rng = np.random.default_rng(2026)
    reference = rng.standard_normal((rows, COLUMNS))
    current = rng.standard_normal((rows, COLUMNS))
    current[:, 10:15] += 0.02
    current[:, 15:20] += 0.25
    real = [f"c{i:02d}" for i in range(15, 20)]
    print(f"(a) reference vs current, {rows:,} rows x {COLUMNS} columns: 10 identical, 5 +0.02 sd, 5 +0.25 sd (real); "
          f"{rounds} rounds")  # fmt: skip
    data = workdir / "batch.npz"
    np.savez(data, reference=reference, current=current)
    ratios: dict[str, list[float]] = {"library": [], "library_cached": [], "api": [], "api_cached": []}
    verdicts = []
    for round_ in range(rounds):
        ours = _mlmon_batch(reference, current)
        served = workdir / f"round-{round_}"  # a fresh database and server each round
        served.mkdir()
        api = _mlmon_api(reference, current, served)
        print(f"    round {round_ + 1}")
        print(f"    mlmon library  {ours['seconds']:8.3f} s  (reference profiled {ours['fit_seconds']:.3f} s once, "
              f"current batch compared {ours['compare_seconds']:.3f} s)")  # fmt: skip
        print(f"    mlmon API      {api['seconds']:8.3f} s  (Arrow IPC over HTTP to `mlmon serve`: reference "
              f"{api['reference_seconds']:.3f} s, current {api['current_seconds']:.3f} s; current again with the "
              f"reference cached {api['cached_seconds']:.3f} s)")  # fmt: skip
        api_drifted = sorted(name for name, col in api["columns"].items() if col["statistics"]["wasserstein"] >= 0.1)
        if round_ == 0:
            exact = ours["drifted"] == real
            print(f"                   library flags {ours['drifted']} -> exactly the real shifts: {exact}")
            worst_quiet = max(v["wasserstein"] for k, v in ours["values"].items() if k not in real)
            least_real = min(ours["values"][k]["wasserstein"] for k in real)
            print(
                f"                   normalised Wasserstein (exact): largest unflagged {worst_quiet:.4f}, "
                f"smallest real {least_real:.4f} (threshold 0.1)"
            )
            print(f"                   API: columns past the Wasserstein threshold {api_drifted}")
        if python is None:
            continue
        theirs = _peer(python, "evidently", data)
        t = theirs["seconds"]
        print(f"    Evidently      {t:8.3f} s  (DataDriftPreset defaults: {theirs['method']}, threshold 0.1); "
              f"flags exactly the real shifts: {theirs['drifted'] == real}")  # fmt: skip
        ratios["library"].append(t / ours["seconds"])
        ratios["library_cached"].append(t / ours["compare_seconds"])
        ratios["api"].append(t / api["seconds"])
        ratios["api_cached"].append(t / api["cached_seconds"])
        verdicts.append(ours["drifted"] == theirs["drifted"] == api_drifted)
        print(f"    ratios: library {ratios['library'][-1]:.1f}x end to end, {ratios['library_cached'][-1]:.0f}x "
              f"cached; API {ratios['api'][-1]:.1f}x end to end, {ratios['api_cached'][-1]:.0f}x cached")  # fmt: skip
    if python is None:
        print("    Evidently: skipped (no peer venv; see this file's docstring)")
        return

    def shown(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}x (rounds {min(values):.1f}-{max(values):.1f}x)"

    print(f"    median ratio, library: {shown(ratios['library'])} end to end, "
          f"{shown(ratios['library_cached'])} per batch with the reference cached (goal >= 20x)")  # fmt: skip
    print(f"    median ratio, API:     {shown(ratios['api'])} end to end, "
          f"{shown(ratios['api_cached'])} per batch with the reference cached (goal >= 20x)")  # fmt: skip
    print(f"    same verdicts as Evidently (library and API, every round): {all(verdicts)}")


def _streams(kind: str, count: int, seed: int) -> tuple[Any, Any, int]:
    """(streams without a change, streams with one, the change point)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        quiet = rng.standard_normal((count, 3000))
        moved = rng.standard_normal((count, 3000))
        moved[:, 1000:] -= 0.5
        return quiet, moved, 1000
    if kind == "bernoulli":
        quiet = (rng.random((count, 10_000)) < 0.90).astype(float)
        moved = (rng.random((count, 10_000)) < np.where(np.arange(10_000) < 3000, 0.90, 0.85)).astype(float)
        return quiet, moved, 3000
    polls, at = 2000 + ROLLING_WINDOW - 1, 600
    quiet = rng.binomial(100, 0.90, (count, polls))
    moved = rng.binomial(100, np.where(np.arange(polls) < at + ROLLING_WINDOW - 1, 0.90, 0.85), (count, polls))
    kernel = np.ones(ROLLING_WINDOW) / (100 * ROLLING_WINDOW)

    def roll(a: Any) -> Any:
        return np.stack([np.convolve(r, kernel, "valid") for r in a])

    return roll(quiet), roll(moved), at


def _summary(detections: list[list[int]], moved: list[list[int]], change_at: int) -> tuple[float | None, int, int]:
    false_alarms = sum(len(d) for d in detections) + sum(len([x for x in d if x < change_at]) for d in moved)
    delays = [next((x for x in d if x >= change_at), None) for d in moved]
    found = [x - change_at for x in delays if x is not None]
    return (sum(found) / len(found) if found else None), len(delays) - len(found), false_alarms


def run_streams(count: int, python: Path | None, workdir: Path) -> None:
    import numpy as np

    print(f"\n(b) change detectors, {count} streams without a change and {count} with one, per kind")
    print(f"    {'stream':<44} {'detector':<36} {'mean delay':>10} {'missed':>7} {'false alarms':>13}")
    for kind, what in (
        ("gaussian", "N(0,1) 3,000 pts, -0.5 sd at 1,000"),
        ("bernoulli", "0/1, 0.90 -> 0.85 at 3,000 of 10,000"),
        ("rolling", f"rolling {ROLLING_WINDOW} polls x 100, 0.90->0.85 at 600"),
    ):
        quiet, moved, at = _streams(kind, count, {"gaussian": 1, "bernoulli": 2, "rolling": 3}[kind])
        ours_quiet, seconds, points = _mlmon_streams(kind, quiet, None)
        ours_moved, seconds2, points2 = _mlmon_streams(kind, moved, at)
        model = {"gaussian": "normal CUSUM (defaults)", "bernoulli": "binomial CUSUM (defaults)",
                 "rolling": f"binomial CUSUM, window {ROLLING_WINDOW} polls"}[kind]  # fmt: skip
        delay, missed, false = _summary(ours_quiet, ours_moved, at)
        rows = [(f"mlmon {model}", delay, missed, false, (seconds + seconds2) / (points + points2))]
        if python is not None:
            path = workdir / f"streams-{kind}.npz"
            np.savez(path, quiet=quiet, moved=moved)
            theirs = _peer(python, "river", path)
            d, m, f = _summary(theirs["detections"]["quiet"], theirs["detections"]["moved"], at)
            rows.append(("River ADWIN(delta=0.002)", d, m, f, theirs["seconds"] / theirs["points"]))
        for name, d, m, f, per in rows:
            shown = f"{d:10.0f}" if d is not None else f"{'-':>10}"
            print(f"    {what:<44} {name:<36} {shown} {m:>7} {f:>13}   ({per * 1e6:.2f} us/point)")
        if len(rows) == 2:
            (_, d1, m1, f1, _), (_, d2, m2, f2, _) = rows
            ok = d1 is not None and (d2 is None or d1 <= d2) and f1 <= f2 and m1 <= m2
            print(f"    {'':<44} goal (delay <= ADWIN's, false alarms and misses <= its): {'met' if ok else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description="drift benchmark (see the module docstring)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--streams", type=int, default=200, help="streams of each kind, with and without a change")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), each mlmon and Evidently in turn")
    parser.add_argument("--bench-python", type=Path, default=BENCH_PYTHON)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--peer", choices=["evidently", "river"], help=argparse.SUPPRESS)
    parser.add_argument("data", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        result = _peer_evidently(args.data) if args.peer == "evidently" else _peer_river(args.data)
        print(json.dumps(result))
        return 0
    # Run as a script, bench/ comes first on the path and its alerts.py would shadow the package.
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(REPO), *(p for p in sys.path if p and Path(p).resolve() != here)]
    python = args.bench_python if args.bench_python.exists() else None
    with tempfile.TemporaryDirectory(prefix="mlmon-bench-drift-") as tmp:
        if not args.skip_batch:
            run_batch(args.rows, python, Path(tmp), args.rounds)
        if not args.skip_stream:
            run_streams(args.streams, python, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
