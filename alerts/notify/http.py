"""The HTTP integrations: webhook, Slack incoming webhook, Alertmanager API v2."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from alerts.notify.base import SendResult, post_json
from alerts.store import OutboxItem
from monitor.config.alerting import ReceiverConfig
from monitor.core.errors import SourceError
from monitor.http import USER_AGENT, expand_env


class HttpSenders:
    """One keep-alive client for every HTTP integration (URLs and secrets come from the current config)."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(headers={"User-Agent": USER_AGENT}, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def webhook(self, item: OutboxItem, receiver: ReceiverConfig, env: Mapping[str, str]) -> SendResult:
        config = receiver.webhook
        if config is None:
            return SendResult.permanent(f"receiver {receiver.name!r} no longer has a webhook")
        url = config.url or env.get(config.url_env or "")
        if not url:
            return SendResult.retryable(f"webhook: environment variable {config.url_env} is not set")
        try:
            headers = {k: expand_env(v, env, f"header {k}") for k, v in config.headers.items()}
        except SourceError as exc:
            return SendResult.retryable(f"webhook: {exc}")
        return post_json(
            self.client, url, item.payload["body"], item, config.timeout.total_seconds(), "webhook", headers
        )

    def slack(self, item: OutboxItem, receiver: ReceiverConfig, env: Mapping[str, str]) -> SendResult:
        config = receiver.slack
        if config is None:
            return SendResult.permanent(f"receiver {receiver.name!r} no longer has slack")
        url = env.get(config.url_env)
        if not url:
            return SendResult.retryable(f"slack: environment variable {config.url_env} is not set")
        return post_json(self.client, url, item.payload["body"], item, config.timeout.total_seconds(), "slack")

    def alertmanager(self, item: OutboxItem, receiver: ReceiverConfig, env: Mapping[str, str]) -> SendResult:
        config = receiver.alertmanager
        index = int(item.payload.get("url_index", 0))
        if config is None or index >= len(config.urls):
            return SendResult.permanent(f"receiver {receiver.name!r} no longer has that Alertmanager")
        url = config.urls[index].rstrip("/") + "/api/v2/alerts"
        return post_json(
            self.client,
            url,
            item.payload["body"],
            item,
            config.timeout.total_seconds(),
            f"alertmanager {config.urls[index]}",
        )
