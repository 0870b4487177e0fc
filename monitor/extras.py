"""Which optional extras a configuration needs installed, so that `make run CONFIG=...` installs them.

Read before the configuration is validated (validating a `focus` source already needs pyarrow), so
only the YAML structure is looked at: the source kinds in use and the database URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

KIND_EXTRAS = {"focus": "focus", "torch_eval": "torch"}
DEMO_EXTRAS = ("focus",)
"""The demo fleet reads a FOCUS export."""


def extras_for(config: Any, database_url: str = "") -> list[str]:
    wanted: set[str] = set()
    projects = config.get("projects") if isinstance(config, Mapping) else None
    for project in projects if isinstance(projects, list) else []:
        sources = project.get("sources") if isinstance(project, Mapping) else None
        for source in sources if isinstance(sources, list) else []:
            if isinstance(source, Mapping) and source.get("kind") in KIND_EXTRAS:
                wanted.add(KIND_EXTRAS[str(source["kind"])])
    if database_url.startswith("postgresql"):
        wanted.add("postgres")
    return sorted(wanted)


def extras_of_file(path: Path, database_url: str = "") -> list[str]:
    """The extras of the file; a file that cannot be read needs none here (check-config says why)."""
    try:
        doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError, UnicodeDecodeError):
        doc = None
    return extras_for(doc, database_url)
