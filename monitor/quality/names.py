"""Names of the series the quality family writes, in one place (rules, sources, API and docs agree)."""

from __future__ import annotations

DRIFT_METRIC = "distribution_drift"
"""`distribution_drift{dataset, column, statistic}`: a statistic of a pushed batch against its reference."""
EXAMPLES_METRIC = "distribution_examples"
"""`distribution_examples{dataset, column}`: values in the newest batch (missing ones excluded)."""

BASELINE_SUFFIX = "_baseline"
"""`<metric>_baseline` (same labels as the series): the baseline a `baseline` source keeps."""
EXAMPLES_SUFFIX = "_examples"
"""`<metric>_examples`: the number of examples a value was computed on."""

MODEL_VERSION = "model_version"
PROMOTION_AGE = "model_promotion_age_seconds"
PROMOTIONS = "model_promotions"
LEAD_TIME = "model_promotion_lead_time_seconds"
