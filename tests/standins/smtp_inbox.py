"""A real SMTP server on loopback (aiosmtpd) whose inbox a test reads: every message as parsed MIME."""

from __future__ import annotations

import email
from collections.abc import Callable
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from loopback import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def start_smtp(authenticator: Callable[..., Any] | None = None) -> tuple[Controller, Inbox]:
    """A started server (plain SMTP; AUTH allowed without TLS when an authenticator is given) and its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator, auth_require_tls=False)
    controller.start()
    return controller, inbox
