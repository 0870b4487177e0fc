"""Params of the `focus` source kind and its attribution rules.

kind: focus
params:
  path: /exports/aws-focus/**/*.csv.gz     # a file, a directory (every file in it) or a glob
  attribution:                             # first matching rule wins
    - tag: ml-project                      # Tags.ml-project; its value is the project id ...
      values: {BrightPathMatrix: churn}    # ... unless mapped here
    - column: SubAccountId
      equals: ["51738928782"]
      project: churn
    - column: ResourceId
      matches: 'arn:aws:sagemaker:.*:vision-.*'   # anchored regular expression
      project: vision
  timezone: UTC                            # days are cut at midnight in this zone
  spread: period                           # spread over ChargePeriodStart..End (start: all on day one)
  currency: USD                            # optional: every file must bill in it
  gpu_instances: {x9.big: 4, g4ad: 0}      # extend the GPU instance table (0 = not a GPU)
  exclude: ['*-old.csv']                   # skip files whose name matches
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from collectors.base import Params
from collectors.spend.focus_rows import MANDATORY, TAGS, tag_key
from monitor.core.naming import MAX_LABEL_VALUE_LENGTH
from monitor.spend.series import RESERVED_ATTRIBUTIONS, currency_problem, zone

_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _project_value(value: str, where: str) -> str:
    if not value or len(value) > MAX_LABEL_VALUE_LENGTH:
        raise ValueError(f"{where}: a project id must be 1 to {MAX_LABEL_VALUE_LENGTH} characters")
    if value in RESERVED_ATTRIBUTIONS:
        raise ValueError(f"{where}: {value!r} is reserved for cost no project owns")
    return value


class TagRule(Params):
    """Attribute a row to the project its tag names."""

    tag: str = Field(description="tag key: ml-project (or Tags.ml-project)")
    values: dict[str, str] = Field(default_factory=dict, description="tag value -> project id")
    unmapped: Literal["keep", "skip"] = Field(
        default="keep", description="a value not in `values`: keep it as the project id, or try the next rule"
    )

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not tag_key(value).strip():
            raise ValueError("expected a tag key like ml-project")
        return value

    @field_validator("values")
    @classmethod
    def _values(cls, value: dict[str, str]) -> dict[str, str]:
        for tag, project in value.items():
            _project_value(project, f"values[{tag!r}]")
        return value

    @property
    def key(self) -> str:
        return tag_key(self.tag)

    @property
    def column(self) -> str:
        return TAGS

    def project_for_tag(self, found: str | None) -> str | None:
        if found is None or not found.strip():
            return None
        if found in self.values:
            return self.values[found]
        return found if self.unmapped == "keep" else None


class ColumnRule(Params):
    """Attribute a row whose column equals one of `equals` (or fully matches `matches`) to `project`."""

    column: str
    equals: list[str] | None = None
    matches: str | None = Field(default=None, description="anchored regular expression")
    project: str

    @field_validator("equals", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        if not _COLUMN.fullmatch(value):
            raise ValueError(f"expected a FOCUS column name like SubAccountId, got {value!r}")
        if value in MANDATORY:
            raise ValueError(f"{value} holds amounts, periods or the currency; attribute by another column")
        return value

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        return _project_value(value, "project")

    @model_validator(mode="after")
    def _one_test(self) -> ColumnRule:
        if (self.equals is None) == (self.matches is None):
            raise ValueError("give exactly one of equals (a value or a list) or matches (a regular expression)")
        return self

    def project_for_value(self, value: str | None) -> str | None:
        if value is None:
            return None
        if self.equals is not None:
            return self.project if value in self.equals else None
        assert self.matches is not None
        return self.project if re.fullmatch(self.matches, value) else None


def _rule_kind(value: Any) -> str:
    """Which rule a list item is: by its `tag` key (else a column rule), so errors name one kind."""
    if isinstance(value, dict):
        return "TagRule" if "tag" in value else "ColumnRule"
    return type(value).__name__


Rule = Annotated[
    Annotated[TagRule, Tag("TagRule")] | Annotated[ColumnRule, Tag("ColumnRule")], Discriminator(_rule_kind)
]


class FocusParams(Params):
    path: str | None = Field(default=None, min_length=1, description="a file, a directory or a glob (** recurses)")
    query: str | None = Field(
        default=None, min_length=1, description="instead of path: SQL over your own FOCUS table (focus_query.py)"
    )
    database_url_env: str | None = Field(
        default=None, description="with query: the environment variable holding the SQLAlchemy URL"
    )
    format: Literal["auto", "csv", "parquet"] = "auto"
    attribution: list[Rule] = Field(min_length=1)
    timezone: str = "UTC"
    spread: Literal["period", "start"] = Field(
        default="period",
        description="period: a charge is spread over its ChargePeriodStart..End in proportion to the time "
        "each local day holds; start: booked whole on the day its period starts",
    )
    currency: str | None = Field(default=None, description="every file must bill in this currency")
    gpu_instances: dict[str, float] = Field(default_factory=dict, description="instance type or family -> GPUs")
    exclude: list[str] = Field(default_factory=list, description="glob patterns of file names to skip")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None:
            problem = currency_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("gpu_instances")
    @classmethod
    def _gpus(cls, value: dict[str, float]) -> dict[str, float]:
        for name, count in value.items():
            if count < 0:
                raise ValueError(f"gpu_instances[{name!r}]: a GPU count cannot be negative")
        return {name.lower(): count for name, count in value.items()}

    @model_validator(mode="after")
    def _where(self) -> FocusParams:
        if (self.path is None) == (self.query is None):
            raise ValueError("give exactly one of path (FOCUS files) or query (SQL over a FOCUS table)")
        if self.query is not None and not self.database_url_env:
            raise ValueError("query needs database_url_env: the environment variable holding the database URL")
        return self

    @property
    def columns_needed(self) -> list[str]:
        """Columns a file must have: FOCUS's mandatory ones and those the column rules read
        (Tags is conditional in FOCUS: a file without it simply has no tags)."""
        needed = list(MANDATORY)
        for rule in self.attribution:
            if rule.column not in needed and rule.column != TAGS:
                needed.append(rule.column)
        return needed
