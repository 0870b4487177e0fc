"""Ignore files for `mlmon scan --ignore-file`: a YAML list of ignores (or an mlmon configuration,
whose `stack.ignores` are used). Every ignore needs an id, a reason and an expiry date.

    ignores:
      - id: CVE-2025-3000
        reason: TorchScript is not used in this service
        expires: 2027-01-31
        packages: [torch]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from monitor.core.errors import StackError
from monitor.core.yaml_guard import YamlRefused, load_yaml
from monitor.stack.config import IgnoreConfig
from monitor.stack.findings import IgnoreRule


class IgnoreFileError(StackError):
    pass


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_ignore_file(path: str | Path) -> list[IgnoreRule]:
    file = Path(path)
    try:
        tree = load_yaml(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise IgnoreFileError(f"{file}: cannot read: {exc}") from None
    except YamlRefused as exc:
        where = f"{file}:{exc.line}:{exc.column}" if exc.line else str(file)
        raise IgnoreFileError(f"{where}: refused: {exc.message}") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
        raise IgnoreFileError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    items: Any = None
    prefix = "ignores"
    if isinstance(tree, CommentedMap):
        if "ignores" in tree:
            items = tree["ignores"]
        elif isinstance(tree.get("stack"), CommentedMap) and "ignores" in tree["stack"]:
            items, prefix = tree["stack"]["ignores"], "stack.ignores"
    if not isinstance(items, CommentedSeq):
        raise IgnoreFileError(f"{file}: expected a list under `ignores:` (or `stack: ignores:`)")
    rules: list[IgnoreRule] = []
    for index, item in enumerate(items):
        line = items.lc.item(index)[0] + 1
        try:
            parsed = IgnoreConfig.model_validate(_plain(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors())
            raise IgnoreFileError(f"{file}:{line}: {prefix}[{index}]: {problems}") from None
        rules.append(
            IgnoreRule(parsed.id, parsed.reason, parsed.expires, tuple(parsed.packages), None, f"{file}:{line}")
        )
    return rules
