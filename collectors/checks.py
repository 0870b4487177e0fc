"""Configuration checks that need the registry: every source's kind exists and its params are valid.

A raw check: it reads the plain YAML data, so it reports params problems even when another part of
the file is invalid.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from collectors.base import SourceKind
from monitor.config.loader import Loc, RawCheck, model_problems


def check_sources(registry: Mapping[str, SourceKind[Any]]) -> RawCheck:
    def check(data: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        projects = data.get("projects")
        for pi, project in enumerate(projects if isinstance(projects, list) else []):
            sources = project.get("sources") if isinstance(project, dict) else None
            for si, source in enumerate(sources if isinstance(sources, list) else []):
                if not isinstance(source, dict) or not isinstance(source.get("kind"), str):
                    continue  # the schema check reports it
                at: Loc = ("projects", pi, "sources", si)
                kind = registry.get(source["kind"])
                if kind is None:
                    known = ", ".join(sorted(registry))
                    yield (*at, "kind"), f"unknown source kind {source['kind']!r}; expected one of: {known}"
                    continue
                yield from model_problems(kind.params, source.get("params") or {}, (*at, "params"))

    return RawCheck(check)
