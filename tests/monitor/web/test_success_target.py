"""`projects[].quality.success`: the declared success metric and target the overview judges by."""

from __future__ import annotations

import pytest

from monitor.config.loader import parse_config
from monitor.core.errors import ConfigError
from monitor.runtime import config_checks

GOOD = """
projects:
  - id: churn
    quality:
      success: {metric: accuracy, op: ">=", target: 0.92, labels: {model: churn-classifier}}
  - id: ranker
    quality:
      success: {metric: ndcg_loss, op: "<", target: 0.3}
"""


def test_a_declared_target_is_read_and_judged() -> None:
    config = parse_config(GOOD, "mlmon.yaml", config_checks())
    churn, ranker = (p.quality.success for p in config.projects)
    assert churn is not None and ranker is not None
    assert str(churn) == 'accuracy{model="churn-classifier"} >= 0.92'
    assert churn.met(0.92) and not churn.met(0.919) and churn.higher_is_better
    assert churn.selects({"model": "churn-classifier", "alias": "production"}) and not churn.selects({"model": "x"})
    assert str(ranker) == "ndcg_loss < 0.3" and ranker.met(0.29) and not ranker.met(0.3) and not ranker.higher_is_better


@pytest.mark.parametrize(
    ("success", "where", "words"),
    [
        ('{metric: accuracy, op: "=>", target: 0.9}', "projects[0].quality.success.op", "'>=', '>', '<=' or '<'"),
        ("{metric: accuracy_baseline, target: 0.9}", "projects[0].quality.success.metric", "use 'accuracy'"),
        ("{metric: accuracy_examples, target: 0.9}", "projects[0].quality.success.metric", "not its examples"),
        ("{metric: Accuracy, target: 0.9}", "projects[0].quality.success.metric", "Accuracy"),
        ("{metric: accuracy, target: .nan}", "projects[0].quality.success.target", "finite number"),
        ("{metric: accuracy}", "projects[0].quality.success.target", "required field is missing"),
        ("{metric: accuracy, target: 0.9, labels: {project: x}}", "projects[0].quality.success.labels", "reserved"),
        ("{metric: accuracy, target: 0.9, goal: 1}", "projects[0].quality.success.goal", "unknown key 'goal'"),
    ],
)
def test_a_bad_target_is_refused_with_its_line_and_field(success: str, where: str, words: str) -> None:
    text = f"projects:\n  - id: churn\n    quality:\n      success: {success}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "mlmon.yaml", config_checks())
    message = str(caught.value)
    assert message.startswith("mlmon.yaml:4:"), message
    assert where in message and words in message, message
