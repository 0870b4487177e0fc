"""Drift benchmark: mlmon's distribution comparison and change detector beside Evidently and River.

(a) Reference vs current, 100,000 rows x 20 numeric columns: c00-c09 identical N(0, 1), c10-c14
    shifted by a negligible 0.02 sd, c15-c19 by a real 0.25 sd. mlmon profiles (bins) the reference
    and compares the current batch with the statistics and default thresholds of the
    `distribution` rule; Evidently 0.7 runs `DataDriftPreset()` (its defaults) on the same data in
    a subprocess of the bench venv. Printed: both times, their ratio, both verdict sets.
    Goal: >= 20x faster than Evidently, and exactly the 5 real shifts flagged.

(b) A stream of 1,000,000 N(0, 1) points with a +0.5 sd mean shift at 500,000, for several seeds:
    detection delay, false alarms before the change and microseconds per update, for mlmon's
    detector (the `change` rule's defaults with `worse: both`) and River's ADWIN (defaults), side
    by side in one run. Goal: delay no worse than ADWIN's, at most 1 false alarm.

Evidently and River live in their own venv, used only here (their pins would fight mlmon's):

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install evidently==0.7.23 river==0.26.1 'pandas<3' numpy scipy

    .venv/bin/python bench/drift.py                       # everything
    .venv/bin/python bench/drift.py --rows 20000 --seeds 1 --stream 200000
    .venv/bin/python bench/drift.py --bench-python /path/to/python   # another venv with the peers

Data goes to the peers through .npy / .npz files in a temporary directory. Figures are printed,
never asserted: the machines are noisy. The same file runs the peers (`--peer evidently|river`),
so that mode imports nothing of mlmon.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
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


def _peer_river(stream: Path) -> dict[str, Any]:
    import numpy as np
    from river.drift import ADWIN

    values = np.load(stream).tolist()
    detector = ADWIN()
    detections = []
    started = time.perf_counter()
    for index, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            detections.append(index)
    return {"seconds": time.perf_counter() - started, "detections": detections, "points": len(values)}


# --- mlmon ---------------------------------------------------------------------------------------


def _mlmon_batch(reference: Any, current: Any) -> dict[str, Any]:
    from alerts.kinds.quality.distribution import DistributionParams
    from monitor.quality.drift import compare, numeric_profile

    thresholds = DistributionParams().thresholds()
    names = [f"c{i:02d}" for i in range(reference.shape[1])]
    started = time.perf_counter()
    profiles = [numeric_profile(reference[:, j], bins=10) for j in range(reference.shape[1])]
    fitted = time.perf_counter()
    drifted, values = [], {}
    for j, name in enumerate(names):
        column = current[:, j]
        drift = compare(profiles[j], numeric_profile(column), column)
        stats = drift.statistics()
        values[name] = stats
        if thresholds.exceeded(stats):
            drifted.append(name)
    done = time.perf_counter()
    return {"seconds": done - started, "fit_seconds": fitted - started, "compare_seconds": done - fitted,
            "drifted": drifted, "values": values}  # fmt: skip


def _mlmon_stream(values: list[float]) -> dict[str, Any]:
    from alerts.kinds.quality.change import ChangeParams
    from monitor.quality.detector import CusumDetector

    params = ChangeParams(metric="accuracy", worse="both")
    detector = CusumDetector(params.shift, params.side_arl, params.warmup)
    started = time.perf_counter()
    changes = detector.run(values, range(len(values)))
    return {
        "seconds": time.perf_counter() - started,
        "detections": [c.detected_ts for c in changes],
        "points": len(values),
        "arl": params.arl,
        "shift": params.shift,
    }


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


def run_batch(rows: int, python: Path | None, workdir: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(2026)
    reference = rng.standard_normal((rows, COLUMNS))
    current = rng.standard_normal((rows, COLUMNS))
    current[:, 10:15] += 0.02
    current[:, 15:20] += 0.25
    real = [f"c{i:02d}" for i in range(15, 20)]
    print(f"(a) reference vs current, {rows:,} rows x {COLUMNS} columns: 10 identical, 5 +0.02 sd, 5 +0.25 sd (real)")
    ours = _mlmon_batch(reference, current)
    print(f"    mlmon     {ours['seconds']:8.3f} s  (reference binned {ours['fit_seconds']:.3f} s once, "
          f"current batch compared {ours['compare_seconds']:.3f} s)")  # fmt: skip
    print(f"              flags {ours['drifted']}  -> exactly the real shifts: {ours['drifted'] == real}")
    worst_quiet = max(v["wasserstein"] for k, v in ours["values"].items() if k not in real)
    least_real = min(ours["values"][k]["wasserstein"] for k in real)
    print(
        f"              normalised Wasserstein: largest unflagged {worst_quiet:.4f}, "
        f"smallest real {least_real:.4f} (threshold 0.1)"
    )
    if python is None:
        print("    Evidently: skipped (no bench venv; see this file's docstring)")
        return
    data = workdir / "batch.npz"
    np.savez(data, reference=reference, current=current)
    theirs = _peer(python, "evidently", data)
    print(f"    Evidently {theirs['seconds']:8.3f} s  (DataDriftPreset defaults: {theirs['method']}, threshold 0.1)")
    print(f"              flags {theirs['drifted']}  -> exactly the real shifts: {theirs['drifted'] == real}")
    print(f"    ratio: mlmon is {theirs['seconds'] / ours['seconds']:.1f}x faster end to end "
          f"({theirs['seconds'] / ours['compare_seconds']:.0f}x per current batch with the reference cached); "
          "goal >= 20x")  # fmt: skip
    print(f"    same verdicts as Evidently: {ours['drifted'] == theirs['drifted']}")


def run_stream(points: int, seeds: int, python: Path | None, workdir: Path) -> None:
    import numpy as np

    change_at = points // 2
    print(f"\n(b) stream of {points:,} N(0, 1) points, +0.5 sd mean shift at {change_at:,}; {seeds} seed(s)")
    header = (
        f"    {'seed':>4}  {'detector':<34} {'delay':>6} {'false alarms':>13} {'alarms after':>13} {'us/update':>10}"
    )
    print(header)
    delays: dict[str, list[int]] = {"mlmon": [], "adwin": []}
    false_alarms: dict[str, list[int]] = {"mlmon": [], "adwin": []}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        values = rng.standard_normal(points)
        values[change_at:] += 0.5
        ours = _mlmon_stream(values.tolist())
        rows = [("mlmon", f"mlmon CUSUM (arl {ours['arl']:.0e}, shift {ours['shift']})", ours)]
        if python is not None:
            path = workdir / f"stream-{seed}.npy"
            np.save(path, values)
            rows.append(("adwin", "River ADWIN (delta=0.002, clock=32)", _peer(python, "river", path)))
        for key, name, result in rows:
            delay, before, after = _stream_figures(result["detections"], change_at)
            if delay is not None:
                delays[key].append(delay)
            false_alarms[key].append(before)
            micro = result["seconds"] / result["points"] * 1e6
            print(
                f"    {seed:>4}  {name:<34} {delay if delay is not None else 'missed':>6} "
                f"{before:>13} {after:>13} {micro:>10.2f}"
            )
    for key, name in (("mlmon", "mlmon"), ("adwin", "ADWIN")):
        if delays[key]:
            print(f"    {name:<6} mean delay {sum(delays[key]) / len(delays[key]):7.1f} points, "
                  f"false alarms per seed {false_alarms[key]}")  # fmt: skip
    if delays["adwin"] and delays["mlmon"]:
        wins = sum(1 for a, b in zip(delays["mlmon"], delays["adwin"], strict=False) if a <= b)
        print(f"    goal: delay no worse than ADWIN's in {wins}/{len(delays['mlmon'])} seeds "
              f"(mean {statistics.fmean(delays['mlmon']):.0f} vs {statistics.fmean(delays['adwin']):.0f}); "
              f"at most 1 false alarm per stream: {max(false_alarms['mlmon']) <= 1}")  # fmt: skip
    elif python is None:
        print("    River ADWIN: skipped (no bench venv; see this file's docstring)")


def main() -> int:
    parser = argparse.ArgumentParser(description="drift benchmark (see the module docstring)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--stream", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=3)
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
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    python = args.bench_python if args.bench_python.exists() else None
    with tempfile.TemporaryDirectory(prefix="mlmon-bench-drift-") as tmp:
        if not args.skip_batch:
            run_batch(args.rows, python, Path(tmp))
        if not args.skip_stream:
            run_stream(args.stream, args.seeds, python, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
