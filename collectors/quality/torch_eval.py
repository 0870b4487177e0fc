"""`torch_eval`: evaluate a PyTorch classifier on the organisation's own holdout data, on a schedule.

    params:
      model: /models/churn/model.pt          # TorchScript (torch.jit.save) or torch.export (.pt2)
      data: /data/churn/holdout.pt           # torch.save({"inputs": X, "targets": y})
      labels: {model: churn-classifier}
      batch_size: 1024
      threads: 1
      max_memory: 4GiB                       # address-space limit of the evaluation process
      max_seconds: 120                       # default: 90% of the source's timeout
      metrics: {accuracy: accuracy, f1: f1_score, loss: loss, examples: accuracy_examples}

Needs the `torch` extra (`pip install 'mlmon[torch]'`) in the interpreter that runs the evaluation
(`python`, default the one running mlmon). The evaluation runs on the CPU in a separate process
(collectors/quality/torch_worker.py) with its own memory and time bounds, so a model that crashes,
hangs or eats the memory fails this source and nothing else. The dataset is loaded with
`weights_only=True`. The source records an event when the model file, the dataset file or the
torch version used changes (a likely cause for a quality alert that follows).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ByteSize, Field, field_validator

from collectors.base import CollectContext, CollectResult, EventDraft, Params, Reading, SourceError, SourceKind
from monitor.config.types import Duration, LabelSet, MetricName

WORKER = Path(__file__).with_name("torch_worker.py")
STARTUP_ALLOWANCE = 0.9
"""Share of the source's timeout the evaluation may use when max_seconds is not set."""
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
"""The only environment variables the evaluation process sees (no secrets of the service)."""


class TorchMetrics(Params):
    """Names of the series written; null skips one."""

    accuracy: MetricName | None = "accuracy"
    f1: MetricName | None = "f1_score"
    loss: MetricName | None = "loss"
    examples: MetricName | None = "accuracy_examples"


class TorchEvalParams(Params):
    model: str = Field(min_length=1)
    data: str = Field(min_length=1)
    format: Literal["auto", "torchscript", "export"] = "auto"
    labels: LabelSet = Field(default_factory=dict)
    batch_size: int = Field(default=1024, ge=1, le=1_000_000)
    threads: int = Field(default=1, ge=1, le=256)
    max_memory: ByteSize = Field(default=ByteSize(4 * 1024**3), description="e.g. 2GiB")
    max_seconds: Duration | None = None
    f1_average: Literal["auto", "binary", "macro", "micro", "weighted"] = "auto"
    metrics: TorchMetrics = Field(default_factory=TorchMetrics)
    python: str | None = Field(default=None, description="interpreter with torch (default: mlmon's)")

    @field_validator("max_memory")
    @classmethod
    def _memory(cls, value: ByteSize) -> ByteSize:
        if value < 256 * 1024**2:
            raise ValueError("max_memory below 256MiB cannot even import torch")
        return value

    @field_validator("max_seconds")
    @classmethod
    def _seconds(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(seconds=1):
            raise ValueError("max_seconds must be at least 1s")
        return value


class TorchEvalCollector:
    def __init__(self, params: TorchEvalParams) -> None:
        self.params = params

    def collect(self, ctx: CollectContext) -> CollectResult:
        p = self.params
        model_hash = _file_hash(p.model, "model")
        data_hash = _file_hash(p.data, "dataset")
        limit = p.max_seconds.total_seconds() if p.max_seconds is not None else ctx.timeout * STARTUP_ALLOWANCE
        answer = run_worker(
            {
                "model": p.model,
                "data": p.data,
                "format": p.format,
                "batch_size": p.batch_size,
                "threads": p.threads,
                "max_memory": int(p.max_memory),
                "f1_average": p.f1_average,
            },
            python=p.python or sys.executable,
            seconds=limit,
            threads=p.threads,
            env=ctx.env,
        )
        readings = []
        labels = dict(p.labels)
        for name, key in (
            (p.metrics.accuracy, "accuracy"),
            (p.metrics.f1, "f1"),
            (p.metrics.loss, "loss"),
            (p.metrics.examples, "n"),
        ):
            if name is not None:
                readings.append(Reading(name, _number(answer, key), labels))
        events = _changes(ctx.checkpoint, p, model_hash, data_hash, str(answer.get("torch", "")))
        checkpoint = {"model_sha256": model_hash, "data_sha256": data_hash, "torch": answer.get("torch"),
                      "seconds": answer.get("seconds"), "classes": answer.get("classes")}  # fmt: skip
        return CollectResult(readings=readings, events=events, checkpoint=checkpoint)


def run_worker(request: dict[str, Any], *, python: str, seconds: float, threads: int, env: Any) -> dict[str, Any]:
    """Run the evaluation process; its answer, or a SourceError saying how it failed."""
    child_env = {k: env[k] for k in PASSED_ENV if k in env}
    child_env.update(
        CUDA_VISIBLE_DEVICES="",  # CPU only, whatever the machine has
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONDONTWRITEBYTECODE="1",
    )
    try:
        proc = subprocess.Popen(
            [python, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            start_new_session=True,  # its own process group: a timeout kills everything it started
        )
    except OSError as exc:
        raise SourceError(f"cannot start the evaluation process ({python}): {exc}") from None
    try:
        out, err = proc.communicate(json.dumps(request).encode(), timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise SourceError(f"evaluation did not finish within {seconds:g}s (max_seconds); it was stopped") from None
    except BaseException:
        _kill(proc)
        raise
    answer = _last_json(out)
    if answer is not None and answer.get("ok") is False:
        raise SourceError(f"evaluation failed: {answer.get('error')}")
    if proc.returncode != 0 or answer is None:
        tail = " ".join(err.decode(errors="replace").split())[-300:]
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            hint = " (over max_memory?)" if name in ("SIGKILL", "SIGSEGV", "SIGABRT") else ""
            raise SourceError(f"evaluation process died of {name}{hint}: {tail or 'no output'}")
        raise SourceError(f"evaluation process exited with status {proc.returncode}: {tail or 'no output'}")
    return answer


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _last_json(out: bytes) -> dict[str, Any] | None:
    for line in reversed(out.decode(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                return None
            return found if isinstance(found, dict) else None
    return None


def _number(answer: dict[str, Any], key: str) -> float:
    value = answer.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SourceError(f"evaluation answered no number for {key}: {value!r}")
    return float(value)


def _file_hash(path: str, what: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise SourceError(f"{what} file {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _changes(saved: Any, p: TorchEvalParams, model_hash: str, data_hash: str, torch_version: str) -> list[EventDraft]:
    events = []
    labels = {k: str(v) for k, v in p.labels.items()}
    for kind, subject, key, new in (
        ("model_version", f"model file {Path(p.model).name}", "model_sha256", model_hash),
        ("dataset_change", f"holdout file {Path(p.data).name}", "data_sha256", data_hash),
    ):
        old = saved.get(key)
        if old and old != new:
            events.append(
                EventDraft(
                    kind,
                    subject[:200],
                    old[:12],
                    new[:12],
                    f"{subject} changed (sha256 {old[:12]} -> {new[:12]})",
                    labels=labels,
                )
            )
    old_torch = saved.get("torch")
    if old_torch and torch_version and old_torch != torch_version:
        events.append(
            EventDraft(
                "torch_version",
                "torch",
                old_torch,
                torch_version,
                f"torch {old_torch} -> {torch_version} (evaluation interpreter)",
                labels=labels,
            )
        )
    return events


KIND = SourceKind(
    "torch_eval",
    TorchEvalParams,
    TorchEvalCollector,
    "accuracy, F1 and loss of a TorchScript / torch.export model on a holdout set, in a bounded subprocess",
)
