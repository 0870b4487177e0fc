"""Read the YAML configuration, validate it, and report every problem as `file:line:col: field: why`.

ruamel.yaml keeps the position of every key and item, so a pydantic error location
(`projects[2].sources[0].interval`) can be turned back into a line of the file.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.config.models import MlmonConfig
from monitor.core.errors import ConfigError, Issue
from monitor.core.yaml_guard import YamlRefused, load_yaml

Loc = tuple[str | int, ...]
Problems = Iterable[tuple[Loc, str]]


@dataclass(frozen=True)
class RawCheck:
    """A check of the plain YAML data. It runs even when the rest of the file is invalid, so one
    answer lists every problem (e.g. a bad interval and bad params of another source)."""

    run: Callable[[Mapping[str, Any]], Problems]


ExtraCheck = Callable[[MlmonConfig], Problems] | RawCheck
"""A further check: of the parsed config (cross-references), or a RawCheck; yields (location, why)."""


Overlay = Callable[[dict[str, Any]], dict[str, Any]]
"""Changes laid over the file's data before validation (API-managed settings)."""


def load_config(path: str | Path, checks: Sequence[ExtraCheck] = (), overlay: Overlay | None = None) -> MlmonConfig:
    """Load and validate the configuration file at `path`; raise ConfigError listing every problem."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(file), [Issue(str(file), f"cannot read the configuration: {exc.strerror}")]) from exc
    return parse_config(raw, str(file), checks, overlay)


def parse_config(
    raw: bytes | str, name: str, checks: Sequence[ExtraCheck] = (), overlay: Overlay | None = None
) -> MlmonConfig:
    """Validate configuration text; `name` is used in error messages."""
    text = _decode(raw, name)
    tree = _parse_yaml(text, name)
    plain = _plain(tree)
    if overlay is not None:
        plain = overlay(plain)
    raw_problems = [p for check in checks if isinstance(check, RawCheck) for p in check.run(plain)]
    located = [_located(name, tree, loc, why) for loc, why in raw_problems]
    try:
        config = MlmonConfig.model_validate(plain)
    except ValidationError as exc:
        issues = [_issue(name, tree, err) for err in exc.errors()] + located
        raise ConfigError(name, _by_position(issues)) from None
    for check in checks:
        if not isinstance(check, RawCheck):
            located += [_located(name, tree, loc, why) for loc, why in check(config)]
    if located:
        raise ConfigError(name, _by_position(located))
    return config


def _by_position(issues: list[Issue]) -> list[Issue]:
    def key(issue: Issue) -> tuple[int, int]:
        parts = issue.where.rsplit(":", 2)
        try:
            return int(parts[-2]), int(parts[-1])
        except (ValueError, IndexError):
            return 0, 0

    return sorted(issues, key=key)


def model_problems(model: type[BaseModel], data: Any, at: Loc) -> Iterator[tuple[Loc, str]]:
    """Validate `data` against `model`; yield each problem located under `at`, with a hint for a
    misspelt key (used for the params of source and rule kinds)."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            why = describe_error(err)
            if err["type"] == "extra_forbidden":
                why += suggestion(model, loc)
            yield (*at, *loc), why


def _decode(raw: bytes | str, name: str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(name, [Issue(f"{name}:{line}", "expected UTF-8 text, found an invalid byte")]) from None


def _parse_yaml(text: str, name: str) -> CommentedMap:
    try:
        tree = load_yaml(text)
    except YamlRefused as exc:
        where = f"{name}:{exc.line}:{exc.column}" if exc.line else name
        raise ConfigError(name, [Issue(where, f"refused: {exc.message}")]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise ConfigError(name, [Issue(where, f"invalid YAML: {exc.problem or exc}")]) from None
    except YAMLError as exc:
        raise ConfigError(name, [Issue(name, f"invalid YAML: {exc}")]) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(name, [Issue(f"{name}:1", "expected a mapping at the top of the file")])
    return tree


def _plain(node: Any) -> Any:
    """ruamel's round-trip types subclass dict/list/str/int; hand pydantic plain ones."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (int, float, str):
        if isinstance(node, plain):
            return plain(node)
    return node


def _position(tree: Any, loc: Loc) -> tuple[int, int, list[str | int]]:
    """Line and column (1-based) of the deepest node `loc` reaches, and the path parts that exist."""
    node, line, col = tree, 1, 1
    if isinstance(tree, CommentedMap):
        line, col = tree.lc.line + 1, tree.lc.col + 1
    path: list[str | int] = []
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            kline, kcol = node.lc.key(part)
            line, col = kline + 1, kcol + 1
            node = node[part]
            path.append(part)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            iline, icol = node.lc.item(part)
            line, col = iline + 1, icol + 1
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and "[" not in part and (last or isinstance(node, Mapping)):
            path.append(part)
            node = None
        # other parts are pydantic's union/validator tags: not part of the file
    return line, col, path


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _located(name: str, tree: Any, loc: Loc, why: str) -> Issue:
    line, col, path = _position(tree, loc)
    return Issue(f"{name}:{line}:{col}", f"{_dotted(path)}: {why}", field=_dotted(path))


def _issue(name: str, tree: Any, err: Any) -> Issue:
    loc: Loc = tuple(err["loc"])
    why = describe_error(err)
    if err["type"] == "extra_forbidden":
        why += suggestion(MlmonConfig, loc)
    return _located(name, tree, loc, why)


def describe_error(err: Any) -> str:
    """One pydantic error as "what was wrong, what was expected (got what)"."""
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}" if loc else "unknown key"
    message = str(err["msg"]).removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or kind.startswith("value_error") else f" (got {got!r})"
    return f"{message}{shown}"


def suggestion(model: type[BaseModel], loc: Loc) -> str:
    """ "; did you mean 'x'?" for an unknown key at `loc` inside `model`, or the keys it accepts."""
    known = _fields_at(model, loc[:-1])
    if not known:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(sorted(known))}"


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_inside(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_inside(annotation: Any) -> Any:
    """The BaseModel class inside `X`, `list[X]`, `X | None` or `dict[str, X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType) or origin is not None:
        for arg in typing.get_args(annotation):
            found = _model_inside(arg)
            if found is not None:
                return found
    return None


def unset_env_warnings(path: str | Path, env: Mapping[str, str]) -> list[Issue]:
    """Each `*_env` key of the file (receivers' secrets, sources' credentials) naming a variable
    that `env` lacks: the configuration loads, but that part will fail at its first use."""
    name = str(path)
    tree = _parse_yaml(_decode(Path(path).read_bytes(), name), name)
    found: list[Issue] = []

    def walk(node: Any, loc: Loc) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str) and value not in env:
                    found.append(_located(name, tree, (*loc, str(key)), f"environment variable {value} is not set"))
                else:
                    walk(value, (*loc, str(key)))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, (*loc, index))

    walk(tree, ())
    return found


def empty_config_issue(path: str | Path) -> Issue:
    name = str(path)
    tree = _parse_yaml(_decode(Path(path).read_bytes(), name), name)
    return _located(name, tree, ("projects",), "no projects are configured, so nothing would be monitored")
