"""Pydantic field types shared by the configuration models."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

from monitor.core.durations import format_duration, parse_duration
from monitor.core.naming import label_name_problem, metric_name_problem, project_id_problem


def _check(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


def _metric(name: str) -> str:
    _check(metric_name_problem(name))
    return name


def _project(project_id: str) -> str:
    _check(project_id_problem(project_id))
    return project_id


def _labels(labels: dict[str, str]) -> dict[str, str]:
    for name in labels:
        _check(label_name_problem(name))
    return labels


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]
"""A duration written as "30s", "5m", "1h30m", "7d" (or a number of seconds)."""

MetricName = Annotated[str, AfterValidator(_metric)]
ProjectId = Annotated[str, AfterValidator(_project)]
LabelSet = Annotated[dict[str, str], AfterValidator(_labels)]
