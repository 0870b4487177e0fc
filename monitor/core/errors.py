"""Error hierarchy of mlmon.

    MlmonError
     ├── ConfigError          a configuration file is invalid (carries every issue with file:line)
     ├── InvalidInput         a request or source output was rejected (carries per-item issues)
     │    └── TooLarge        a batch or body is over its limit
     ├── NotFound             an unknown project, series, alert, silence ...
     ├── SourceError          a source failed; the message is the source's own reason
     │    └── SourceUnavailable   the source could not be reached (connection, timeout, 5xx)
     └── StackError           an inventory, advisory or ignore file cannot be read (monitor.stack)

Adapters translate foreign exceptions (httpx, SQLAlchemy, pydantic) into these at the boundary;
the web layer maps them to HTTP answers in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


class MlmonError(Exception):
    """Base of every error mlmon raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in an input: where it is and what was expected."""

    where: str
    message: str
    index: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ConfigError(MlmonError):
    """A configuration file is invalid."""

    def __init__(self, path: str, issues: list[Issue]) -> None:
        self.path = path
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class InvalidInput(MlmonError):
    """Input was rejected; `issues` names each offending item and field."""

    def __init__(self, issues: list[Issue], summary: str = "invalid input") -> None:
        self.issues = issues
        self.summary = summary
        detail = "; ".join(str(i) for i in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"{summary}: {detail}{more}")


class TooLarge(InvalidInput):
    """A batch or body is over its limit."""


class NotFound(MlmonError):
    """The thing asked for does not exist."""


class SourceError(MlmonError):
    """A source failed; the message says why in the source's own words."""


class SourceUnavailable(SourceError):
    """The source could not be reached."""


class StackError(MlmonError):
    """A file of the stack family (inventory, advisory record or export, ignore file) cannot be read."""
