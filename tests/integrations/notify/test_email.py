"""The `email` notifier against a real SMTP server on loopback (aiosmtpd), the test reading the MIME parts it received."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from smtp_inbox import Inbox, start_smtp

from contracts import NOTICE, SECRET_DIR, Broken, NotifierContract, build
from integrations.errors import SourceError
from integrations.notify import email as email_kind
from integrations.remote_calls import RetryableError
from tests.standins.loopback import free_port


def _authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"ir-bot" and data.password == b"mail-pass-123"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Controller, Inbox]]:
    controller, inbox = start_smtp(_authenticate)
    monkeypatch.setenv("SMTP_USER", "ir-bot")
    monkeypatch.setenv("SMTP_PASSWORD", "mail-pass-123")
    yield controller, inbox
    controller.stop()


def _options(controller: Controller, **extra: Any) -> dict[str, Any]:
    return {
        "to": ["oncall@example.com", "sre@example.com"],
        "sender": "incident-responder@example.com",
        "host": "127.0.0.1",
        "port": controller.port,
        "security": "none",
        "username_env": "SMTP_USER",
        "password_env": "SMTP_PASSWORD",
        "timeout_s": 5,
        **extra,
    }


class TestEmailContract(NotifierContract):
    kind = email_kind.KIND

    @pytest.fixture
    def make_source(self, smtp: tuple[Controller, Inbox]) -> Any:
        return lambda: _options(smtp[0])

    @pytest.fixture
    def delivered(self, smtp: tuple[Controller, Inbox]) -> Any:
        return lambda: [message.as_string() for message in smtp[1].messages]

    @pytest.fixture
    def broken_source(self) -> Broken:
        host = f"{SECRET_DIR}.invalid"
        return Broken(
            {"to": ["a@example.com"], "sender": "b@example.com", "host": host, "port": 25, "security": "none", "timeout_s": 2},
            target=host,
            check_bug=None,
        )


def test_the_mail_has_a_text_and_an_html_part_and_a_stable_message_id(smtp: tuple[Controller, Inbox], tmp_path: Path) -> None:
    controller, inbox = smtp
    build(email_kind.KIND, _options(controller), tmp_path).send(NOTICE)

    [message] = inbox.messages
    assert message["Subject"] == f"[svc] bad deploy: {NOTICE.title}"
    assert message["To"] == "oncall@example.com, sre@example.com"
    assert message["Message-ID"] == f"<{NOTICE.delivery_id}@example.com>"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk() if not part.is_multipart()}
    assert set(parts) == {"text/plain", "text/html"}
    assert NOTICE.text in parts["text/plain"] and NOTICE.report_url in parts["text/plain"]
    assert "<b>checkout</b>" in parts["text/html"]


def test_wrong_credentials_are_a_permanent_error(smtp: tuple[Controller, Inbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    with pytest.raises(SourceError, match="refused the SMTP credentials") as raised:
        build(email_kind.KIND, _options(smtp[0]), tmp_path).send(NOTICE)
    assert not isinstance(raised.value, RetryableError)
    assert smtp[1].messages == []


def test_a_server_that_is_down_is_retryable(tmp_path: Path) -> None:
    options = {
        "to": ["a@example.com"],
        "sender": "b@example.com",
        "host": "127.0.0.1",
        "port": free_port(),
        "security": "none",
        "timeout_s": 2,
    }
    with pytest.raises(RetryableError, match="did not take the mail"):
        build(email_kind.KIND, options, tmp_path).send(NOTICE)


def test_sources_check_signs_in_without_sending(smtp: tuple[Controller, Inbox], tmp_path: Path) -> None:
    notifier = build(email_kind.KIND, _options(smtp[0]), tmp_path)
    assert email_kind.KIND.check is not None
    assert email_kind.KIND.check(notifier) == f"SMTP 127.0.0.1:{smtp[0].port} answers (none, credentials accepted)"
    assert smtp[1].messages == []
