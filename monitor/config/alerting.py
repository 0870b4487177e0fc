"""Configuration of the alert engine: rules, the route tree, receivers and their integrations.

alerting: {evaluation_interval: 30s, resend_delay: 1m}
rules:
  - name: accuracy-low
    kind: threshold
    projects: [churn]                 # or project_selector: ['tier="gold"'] (all if neither)
    for: 5m
    keep_firing_for: 10m
    labels: {severity: critical}
    annotations: {summary: "{{ project.name }}: accuracy {{ value | round(3) }}"}
    params: {metric: accuracy, op: "<", value: 0.90, clear: 0.92}
receivers:
  - name: owners
    email: {to: [owners], smtp: {host: smtp.internal, port: 587, starttls: true}}
route:                                # every alert goes to `receiver` (its project's owners) ...
  receiver: owners
  group_by: [project, alertname]
  routes:                             # ... plus every matching route
    - {matchers: ['severity="critical"'], receiver: oncall, group_wait: 0s}
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from monitor.config.base import StrictModel
from monitor.config.types import Duration, LabelSet
from monitor.core.matchers import Matcher, parse_matchers
from monitor.core.naming import label_name_problem

_RULE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]{0,127}")
SEVERITIES = ("info", "low", "medium", "warning", "high", "critical")


def parse_matcher_list(values: list[str]) -> tuple[Matcher, ...]:
    matchers: list[Matcher] = []
    for text in values:
        matchers.extend(parse_matchers(text))
    return tuple(matchers)


def _check_matchers(values: list[str]) -> list[str]:
    for text in values:
        try:
            parse_matchers(text)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
    return values


class AlertingConfig(StrictModel):
    evaluation_interval: Duration = timedelta(seconds=30)
    resend_delay: Duration = Field(default=timedelta(minutes=1), description="re-send to Alertmanager while firing")
    resolved_retention: Duration = Field(default=timedelta(minutes=15), description="keep re-sending resolutions")
    external_url: str | None = Field(default=None, description="link target in notifications")


class RuleConfig(StrictModel):
    """One alerting rule; `params` are checked against the rule kind's own schema."""

    name: str
    kind: str
    projects: list[str] | None = None
    project_selector: list[str] = Field(default_factory=list, description='matchers on project labels: tier="gold"')
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    labels: LabelSet = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    sources: list[str] | None = Field(default=None, description="sources the rule depends on (for inhibition)")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.fullmatch(value):
            raise ValueError(f"expected a rule name matching [a-zA-Z][a-zA-Z0-9_.-]*, got {value!r}")
        return value

    @field_validator("project_selector")
    @classmethod
    def _selector(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)

    @field_validator("labels")
    @classmethod
    def _severity(cls, value: dict[str, str]) -> dict[str, str]:
        severity = value.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"labels.severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        if "alertname" in value:
            raise ValueError("labels.alertname is set from the rule name")
        return value

    @model_validator(mode="after")
    def _scope(self) -> RuleConfig:
        if self.projects is not None and self.project_selector:
            raise ValueError("give either projects or project_selector, not both")
        return self

    @property
    def project_matchers(self) -> tuple[Matcher, ...]:
        return parse_matcher_list(self.project_selector)


class WebhookConfig(StrictModel):
    url: str | None = None
    url_env: str | None = Field(default=None, description="environment variable holding the URL (a secret)")
    headers: dict[str, str] = Field(default_factory=dict, description="values may use ${ENV_VAR}")
    timeout: Duration = timedelta(seconds=10)
    max_alerts: int = Field(default=0, ge=0, description="0 = no limit; more are counted in truncatedAlerts")

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url or url_env")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL, got {self.url!r}")
        return self


class SlackConfig(StrictModel):
    url_env: str = Field(description="environment variable holding the incoming-webhook URL (a secret)")
    channel: str | None = None
    mention_owners: bool = True
    timeout: Duration = timedelta(seconds=10)


class SmtpConfig(StrictModel):
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    starttls: bool = True
    use_tls: bool = Field(default=False, description="implicit TLS (port 465)")
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    timeout: Duration = timedelta(seconds=15)

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _tls(self) -> SmtpConfig:
        if self.starttls and self.use_tls:
            raise ValueError("starttls and use_tls exclude each other")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both username_env and password_env, or neither")
        return self


class EmailConfig(StrictModel):
    to: list[str] = Field(min_length=1, description='addresses, or "owners" for the project\'s owners')
    smtp: SmtpConfig


class AlertmanagerConfig(StrictModel):
    urls: list[str] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=10)

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected an http(s) URL, got {url!r}")
        return value


class ReceiverConfig(StrictModel):
    name: str
    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    alertmanager: AlertmanagerConfig | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _something(self) -> ReceiverConfig:
        if not (self.webhook or self.slack or self.email or self.alertmanager):
            raise ValueError(f"receiver {self.name!r} has no integration (webhook, slack, email or alertmanager)")
        return self

    @property
    def integrations(self) -> list[str]:
        return [n for n in ("webhook", "slack", "email", "alertmanager") if getattr(self, n) is not None]


class Timers(StrictModel):
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None


class RouteConfig(Timers):
    """A child route: alerts matching `matchers` also go to `receiver`."""

    receiver: str
    matchers: list[str] = Field(default_factory=list)
    group_by: list[str] | None = None
    continue_: bool = Field(default=False, alias="continue")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name != "..." and label_name_problem(name) and name not in ("project", "alertname"):
                raise ValueError(f"group_by: {name!r} is not a label name")
        return value


class RootRoute(Timers):
    """Every alert goes to `receiver` (normally the project's owners) and to each matching child route."""

    receiver: str | None = None
    group_by: list[str] = Field(default_factory=lambda: ["project", "alertname"])
    group_wait: Duration | None = timedelta(seconds=30)
    group_interval: Duration | None = timedelta(minutes=5)
    repeat_interval: Duration | None = timedelta(hours=4)
    routes: list[RouteConfig] = Field(default_factory=list)


class InhibitConfig(StrictModel):
    """Beyond the built-in source_down inhibition: a firing source alert mutes matching targets."""

    source_matchers: list[str]
    target_matchers: list[str]
    equal: list[str] = Field(default_factory=lambda: ["project"])

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)


IntegrationName = Literal["webhook", "slack", "email", "alertmanager"]
