"""Email notifications to a real SMTP server (aiosmtpd) on 127.0.0.1: plain text and HTML parts,
recipients resolved from the project's owners, authentication with credentials from the
environment, STARTTLS with a self-signed certificate, and SMTP answers: 5xx fails for good with the
server's words, 4xx is retried."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.store import OutboxItem, OutboxStore
from monitor.api.app import create_app
from monitor.core.clock import FrozenClock
from monitor.runtime import Runtime
from monitor.services import Services
from tests.conftest import RuntimeFactory, token_headers
from tests.support.http_server import self_signed_cert
from tests.support.peers import free_port, missing

pytestmark = [
    pytest.mark.peer,
    # the plain-text AUTH server below is what the test wants; aiosmtpd warns about it
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
except ImportError:  # pragma: no cover - the dev dependencies install it
    Controller = None  # type: ignore[assignment,misc]

USER_ENV, PASSWORD_ENV = "MLMON_TEST_SMTP_USER", "MLMON_TEST_SMTP_PASSWORD"
USER, PASSWORD = "mlmon-bot", "correct horse battery staple"

CONFIG = """
alerting: {{external_url: "http://mlmon.test"}}
projects:
  - id: churn
    name: Churn classifier
    owners:
      - {{name: Ada, email: ada@example.com, slack: "@ada"}}
      - {{name: Bob, slack: "@bob"}}
      - {{name: Grace, email: grace@example.com}}
rules:
  - name: accuracy-low
    kind: threshold
    labels: {{severity: critical}}
    params: {{metric: accuracy, op: "<", value: 0.90}}
    annotations:
      summary: "{{{{ project.name }}}} accuracy is {{{{ value | percent }}}}"
      description: "accuracy <below> 90% & falling"
      runbook_url: https://runbooks.example.com/accuracy
receivers:
  - name: owners-mail
    email:
      to: [owners, oncall@example.com]
      smtp: {{host: 127.0.0.1, port: {port}, starttls: {starttls}, from: mlmon@example.com{auth}}}
route:
  receiver: owners-mail
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
"""
AUTH = f", username_env: {USER_ENV}, password_env: {PASSWORD_ENV}"


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    tls: bool


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts, and can be told how to answer RCPT / DATA."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.data_attempts = 0
        self.rcpt_answer: str | None = None
        self.refuse: set[str] = set()
        self.data_answer: str | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_answer:
            return self.rcpt_answer
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_attempts += 1
        if self.data_answer:
            return self.data_answer
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(
            Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, login, session.ssl is not None)
        )
        return "250 Message accepted for delivery"


def part(message: EmailMessage, subtype: str) -> str:
    found = message.get_body((subtype,))
    assert found is not None, f"no text/{subtype} part"
    return str(found.get_content())


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class Smtp:
    port: int
    mailbox: Mailbox


def start_smtp(**smtp_parameters: Any) -> Iterator[Smtp]:
    if Controller is None:
        missing("aiosmtpd", "install the dev dependencies (pip install -e '.[dev]')")
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **smtp_parameters)
    controller.start()
    try:
        yield Smtp(port, mailbox)
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    yield from start_smtp()


@pytest.fixture
def smtp_auth() -> Iterator[Smtp]:
    yield from start_smtp(authenticator=authenticator, auth_required=True, auth_require_tls=False)


class Mailer:
    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.client = client
        self.services = Services.build(runtime)
        self.outbox = OutboxStore(runtime.store.engine)

    def push(self, value: float) -> None:
        sample = {"project": "churn", "metric": "accuracy", "labels": {"model": "m"}, "value": value}
        assert self.client.post("/api/v1/samples", json={"samples": [sample]}).status_code == 200

    def step(self) -> None:
        self.services.loops.dispatcher.tick()
        self.services.loops.deliverer.deliver_due()

    def item(self) -> OutboxItem:
        [item] = self.outbox.items()
        return item


def mailer(
    make_runtime: RuntimeFactory, clock: FrozenClock, port: int, *, auth: bool = False, starttls: bool = False
) -> Iterator[Mailer]:
    text = CONFIG.format(port=port, starttls=str(starttls).lower(), auth=AUTH if auth else "")
    runtime = make_runtime(text, clock=clock)
    with TestClient(create_app(runtime), headers=token_headers(runtime)) as client:
        yield Mailer(runtime, client)


def test_email_with_text_and_html_parts_to_the_owners(
    make_runtime: RuntimeFactory, clock: FrozenClock, smtp: Smtp
) -> None:
    for m in mailer(make_runtime, clock, smtp.port):
        m.push(0.80)
        m.step()
        item = m.item()
        assert item.status == "sent", item.last_error
        [mail] = smtp.mailbox.mails
        assert mail.mail_from == "mlmon@example.com"
        assert sorted(mail.rcpt_tos) == ["ada@example.com", "grace@example.com", "oncall@example.com"]
        message = mail.message
        assert message["Subject"] == "[FIRING:1] accuracy-low - Churn classifier"
        assert message["From"] == "mlmon@example.com"
        assert sorted(a.strip() for a in str(message["To"]).split(",")) == sorted(mail.rcpt_tos)
        assert message["X-Mlmon-Idempotency-Key"] == item.idempotency_key
        assert item.idempotency_key in str(message["Message-ID"])
        assert message.get_content_type() == "multipart/alternative"
        assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
        text, html = part(message, "plain"), part(message, "html")
        assert "[FIRING] Churn classifier accuracy is 80.0% (value 0.8)" in text
        assert "description: accuracy <below> 90% & falling" in text
        assert "runbook_url: https://runbooks.example.com/accuracy" in text
        assert f"Notification id: {item.idempotency_key}" in text
        assert "<table" in html and "Churn classifier accuracy is 80.0%" in html
        assert "<td>FIRING</td>" in html and "alertname=accuracy-low" in html

        clock.advance(timedelta(minutes=1))
        m.push(0.95)
        m.step()
        resolved = smtp.mailbox.mails[1].message
        assert resolved["Subject"] == "[RESOLVED] accuracy-low - Churn classifier"
        assert "[RESOLVED] Churn classifier accuracy is 95.0% (value 0.95)" in part(resolved, "plain")


def test_smtp_auth_with_credentials_from_the_environment(
    make_runtime: RuntimeFactory, clock: FrozenClock, smtp_auth: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(USER_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    for m in mailer(make_runtime, clock, smtp_auth.port, auth=True):
        m.push(0.80)
        m.step()
        item = m.item()
        assert item.status == "pending"
        assert item.last_error == f"email: {USER_ENV} / {PASSWORD_ENV} are not both set"
        assert smtp_auth.mailbox.mails == []

        monkeypatch.setenv(USER_ENV, USER)
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        clock.set(item.next_attempt_at)
        m.step()
        assert m.item().status == "sent", m.item().last_error
        [mail] = smtp_auth.mailbox.mails
        assert mail.login == USER and not mail.tls


def test_wrong_smtp_password_fails_for_good_with_the_servers_answer(
    make_runtime: RuntimeFactory, clock: FrozenClock, smtp_auth: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    for m in mailer(make_runtime, clock, smtp_auth.port, auth=True):
        m.push(0.80)
        m.step()
        item = m.item()
        assert item.status == "failed"
        assert item.last_error == (
            f"email: 127.0.0.1:{smtp_auth.port} answered 535: 5.7.8 Authentication credentials invalid"
        )
        assert smtp_auth.mailbox.mails == []


def test_starttls_with_a_self_signed_certificate_and_auth(
    make_runtime: RuntimeFactory, clock: FrozenClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = self_signed_cert(tmp_path)
    # the client verifies the server: trust the test certificate, as an operator would trust their CA
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))
    monkeypatch.setenv(USER_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    for server in start_smtp(
        authenticator=authenticator,
        auth_required=True,
        require_starttls=True,
        tls_context=cert.server_context(),
    ):
        for m in mailer(make_runtime, clock, server.port, auth=True, starttls=True):
            m.push(0.80)
            m.step()
            assert m.item().status == "sent", m.item().last_error
            [mail] = server.mailbox.mails
            assert mail.tls and mail.login == USER
            assert mail.message["Subject"] == "[FIRING:1] accuracy-low - Churn classifier"


@pytest.mark.parametrize(
    ("stage", "answer"),
    [("data", "550 5.7.1 Message rejected as spam"), ("rcpt", "550 5.1.1 Mailbox unavailable")],
)
def test_smtp_5xx_fails_for_good_with_the_servers_message(
    make_runtime: RuntimeFactory, clock: FrozenClock, smtp: Smtp, stage: str, answer: str
) -> None:
    setattr(smtp.mailbox, f"{stage}_answer", answer)
    for m in mailer(make_runtime, clock, smtp.port):
        m.push(0.80)
        m.step()
        item = m.item()
        assert item.status == "failed"
        code, _, words = answer.partition(" ")
        assert item.last_error is not None
        assert f"answered {code}" in item.last_error and words in item.last_error, item.last_error
        attempts = smtp.mailbox.data_attempts
        clock.advance(timedelta(minutes=30))
        m.services.loops.deliverer.deliver_due()
        assert m.item().attempts == 1 and smtp.mailbox.data_attempts == attempts  # not retried


def test_smtp_4xx_is_retried_until_accepted(make_runtime: RuntimeFactory, clock: FrozenClock, smtp: Smtp) -> None:
    smtp.mailbox.data_answer = "451 4.3.0 Mail server temporarily rejected message"
    for m in mailer(make_runtime, clock, smtp.port):
        m.push(0.80)
        m.step()
        item = m.item()
        assert item.status == "pending"
        assert item.last_error == (
            f"email: 127.0.0.1:{smtp.port} answered 451: 4.3.0 Mail server temporarily rejected message"
        )
        smtp.mailbox.data_answer = None
        clock.set(item.next_attempt_at)
        m.step()
        assert m.item().status == "sent" and m.item().attempts == 2
        assert smtp.mailbox.data_attempts == 2 and len(smtp.mailbox.mails) == 1


def test_a_refused_recipient_does_not_hold_back_the_others(
    make_runtime: RuntimeFactory, clock: FrozenClock, smtp: Smtp
) -> None:
    smtp.mailbox.refuse = {"oncall@example.com"}
    for m in mailer(make_runtime, clock, smtp.port):
        m.push(0.80)
        m.step()
        assert m.item().status == "sent"
        [mail] = smtp.mailbox.mails
        assert sorted(mail.rcpt_tos) == ["ada@example.com", "grace@example.com"]
        clock.advance(timedelta(minutes=30))
        m.step()
        assert len(smtp.mailbox.mails) == 1  # not repeated to the ones who got it
