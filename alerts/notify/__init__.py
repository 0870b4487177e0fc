"""Integrations that deliver a queued notification: webhook, Slack, email, Alertmanager."""

from __future__ import annotations
