"""Source kinds of the quality family. Adding one: its module here, then one line in KINDS."""

from __future__ import annotations

from typing import Any

from collectors.base import SourceKind
from collectors.quality import baseline, mlflow, prometheus, torch_eval

KINDS: tuple[SourceKind[Any], ...] = (mlflow.KIND, prometheus.KIND, torch_eval.KIND, baseline.KIND)
