"""Email through SMTP with an async client (aiosmtplib): plain text and HTML, STARTTLS or implicit
TLS, credentials from the environment. SMTP 4xx answers and connection problems are retried; 5xx
answers (a refused recipient, say) fail for good with the server's words."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from alerts.notify.base import SendResult
from alerts.store import OutboxItem
from monitor.config.alerting import ReceiverConfig


def build_message(item: OutboxItem, sender: str) -> EmailMessage:
    payload = item.payload
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(payload["to"])
    message["Subject"] = payload["subject"]
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=item.idempotency_key, domain="mlmon")
    message["X-Mlmon-Idempotency-Key"] = item.idempotency_key
    message.set_content(payload["text"])
    message.add_alternative(payload["html"], subtype="html")
    return message


def send_email(item: OutboxItem, receiver: ReceiverConfig, env: Mapping[str, str]) -> SendResult:
    config = receiver.email
    if config is None:
        return SendResult.permanent(f"receiver {receiver.name!r} no longer has email")
    if not item.payload.get("to"):
        return SendResult.permanent("email: no recipient (the project has no owner with an email address)")
    smtp = config.smtp
    username = password = None
    if smtp.username_env and smtp.password_env:
        username, password = env.get(smtp.username_env), env.get(smtp.password_env)
        if username is None or password is None:
            return SendResult.retryable(f"email: {smtp.username_env} / {smtp.password_env} are not both set")
    message = build_message(item, smtp.sender)
    where = f"{smtp.host}:{smtp.port}"
    try:
        refused, _ = asyncio.run(
            aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                start_tls=smtp.starttls,
                use_tls=smtp.use_tls,
                username=username,
                password=password,
                timeout=smtp.timeout.total_seconds(),
            )
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        # every recipient refused at RCPT: not an SMTPResponseException, but the same rule applies
        answers = "; ".join(f"{r.recipient} answered {r.code}: {r.message}" for r in exc.recipients)
        detail = f"email: {where} refused every recipient: {answers}"
        temporary = any(400 <= r.code < 500 for r in exc.recipients)
        return SendResult.retryable(detail) if temporary else SendResult.permanent(detail)
    except aiosmtplib.SMTPResponseException as exc:
        detail = f"email: {where} answered {exc.code}: {exc.message}"
        return SendResult.retryable(detail) if 400 <= exc.code < 500 else SendResult.permanent(detail)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return SendResult.retryable(f"email: {where}: {type(exc).__name__}: {exc}")
    sent = len(item.payload["to"]) - len(refused)
    if refused:
        # accepted for some: retrying would repeat it to those, so report the others and stop
        answers = "; ".join(f"{to} answered {r.code}: {r.message}" for to, r in sorted(refused.items()))
        return SendResult.success(f"email to {sent} recipient(s); refused: {answers}")
    return SendResult.success(f"email to {sent} recipient(s)")
