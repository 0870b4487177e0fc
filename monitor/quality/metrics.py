"""`/metrics` families of the quality family, read from the store at scrape time.

Quality series themselves (accuracy, baselines, `distribution_drift`, pace) are stored series and
already exported as `mlmon_<metric>`; this adds what only the family's tables know: the active
reference distributions.

    mlmon_quality_reference_examples{project, dataset, column, <labels>}           values in the reference
    mlmon_quality_reference_created_timestamp_seconds{project, dataset, column, <labels>}
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import Metric

from monitor.config.models import MlmonConfig
from monitor.quality.distributions import DistributionStore
from monitor.store.store import Store


def families(store: Store, config: MlmonConfig) -> Iterable[Metric]:
    references = DistributionStore(store.engine).references()
    # Label sets differ between references (their own labels), so samples are added one by one.
    examples = Metric(
        "mlmon_quality_reference_examples", "Values in the active reference distribution of a column", "gauge"
    )
    created = Metric(
        "mlmon_quality_reference_created_timestamp_seconds", "When the active reference of a column was pushed", "gauge"
    )
    for ref in references:
        labels = {**ref.labels, "project": ref.project, "dataset": ref.dataset, "column": ref.column}
        examples.add_sample(examples.name, labels, float(ref.n))
        created.add_sample(created.name, labels, ref.created_at.timestamp())
    return [examples, created]
