"""Run by Evidently's own interpreter (`MLMON_TEST_EVIDENTLY_PYTHON`), never imported by mlmon.

    python evidently_drift.py CASES.npz  ->  one JSON line: {"case name": [drifted column indexes]}

CASES.npz holds `<case>__reference` and `<case>__current` arrays (rows x columns) for each case;
each case runs `Report([DataDriftPreset()])` at its defaults (current first, Evidently 0.7's order).
"""

from __future__ import annotations

import json
import sys
import warnings


def main(path: str) -> None:
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    warnings.simplefilter("ignore")
    arrays = np.load(path)
    cases = sorted({name.split("__", 1)[0] for name in arrays.files})
    out: dict[str, list[int]] = {}
    for case in cases:
        ref, cur = arrays[f"{case}__reference"], arrays[f"{case}__current"]
        names = [f"c{j:03d}" for j in range(ref.shape[1])]
        snapshot = Report([DataDriftPreset()]).run(
            current_data=pd.DataFrame(cur, columns=names), reference_data=pd.DataFrame(ref, columns=names)
        )
        drifted = []
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if not config.get("type", "").endswith("ValueDrift"):
                continue
            value, threshold = float(metric["value"]), float(config["threshold"])
            method = config["method"].lower()
            is_p_value = "p_value" in method or "test" in method
            if (value < threshold) if is_p_value else (value >= threshold):
                drifted.append(names.index(config["column"]))
        out[case] = sorted(drifted)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
