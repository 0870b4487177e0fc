"""What a sender returns, and how HTTP answers are classified (Alertmanager's retry rules)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from alerts.store import OutboxItem
from monitor.config.alerting import ReceiverConfig


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    retry: bool
    detail: str

    @classmethod
    def success(cls, detail: str = "") -> SendResult:
        return cls(True, False, detail)

    @classmethod
    def retryable(cls, detail: str) -> SendResult:
        return cls(False, True, detail)

    @classmethod
    def permanent(cls, detail: str) -> SendResult:
        return cls(False, False, detail)


Sender = Callable[[OutboxItem, ReceiverConfig, Mapping[str, str]], SendResult]
"""Sends one queued notification with the receiver's current configuration."""


def post_json(
    client: httpx.Client,
    url: str,
    body: Any,
    item: OutboxItem,
    timeout: float,
    what: str,
    extra_headers: Mapping[str, str] | None = None,
) -> SendResult:
    """2xx ok; 5xx, 429 and transport errors retry; any other status fails for good with the answer."""
    headers = {
        **(extra_headers or {}),
        "Idempotency-Key": item.idempotency_key,
        "X-Mlmon-Idempotency-Key": item.idempotency_key,
    }
    try:
        response = client.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return SendResult.retryable(f"{what}: timed out after {timeout:g}s")
    except httpx.TransportError as exc:
        return SendResult.retryable(f"{what}: {type(exc).__name__}: {exc}")
    answer = " ".join(response.text.split())[:300]
    if response.is_success:
        return SendResult.success(f"{what}: {response.status_code}")
    if response.status_code >= 500 or response.status_code == 429:
        return SendResult.retryable(f"{what}: answered {response.status_code}: {answer}")
    return SendResult.permanent(f"{what}: answered {response.status_code}: {answer}")
