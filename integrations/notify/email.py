"""A finished report by e-mail: multipart text and HTML rendered from the report templates, over SMTP (STARTTLS, auth)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.notify.base import Notice, OpsNotice
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import RetryableError


class EmailOptions(SourceOptions):
    to: list[str] = Field(min_length=1, description="recipients")
    sender: str = Field(description="From: address")
    host: str = Field(description="SMTP server")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 with STARTTLS, 465 with implicit TLS, 25 plain)")
    security: str = Field("starttls", pattern=r"^(starttls|tls|none)$", description="starttls, tls (implicit, port 465) or none")
    username_env: EnvVarName | None = Field(None, description="environment variable holding the SMTP user name")
    password_env: EnvVarName | None = Field(None, description="environment variable holding the SMTP password")
    timeout_s: float = Field(15.0, gt=0, description="longest wait for the SMTP server")


class EmailNotifier:
    def __init__(self, options: EmailOptions) -> None:
        self.name = options.name or "email"
        self.options = options
        self._user = secret_from_env(options.username_env, purpose="SMTP user") if options.username_env else None
        self._password = secret_from_env(options.password_env, purpose="SMTP password") if options.password_env else None

    @property
    def target(self) -> str:
        return f"{', '.join(self.options.to)} via {self.options.host}:{self.options.port}"

    def message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        prefix = "[degraded] " if notice.degraded else ""
        message["Subject"] = f"{prefix}[{notice.service}] {notice.category.replace('_', ' ')}: {notice.title}"[:250]
        message["From"] = self.options.sender
        message["To"] = ", ".join(self.options.to)
        message["Date"] = formatdate(usegmt=True)
        # Stable per investigation and target: a mail client shows a re-sent copy as the same message.
        domain = self.options.sender.rpartition("@")[2] or "incident-responder"
        message["Message-ID"] = (
            f"<{notice.delivery_id or notice.investigation_id}@{domain}>" if notice.delivery_id else make_msgid(domain=domain)
        )
        message.set_content(f"{notice.text}\n\nFull report: {notice.report_url}\n")
        message.add_alternative(notice.html, subtype="html")
        return message

    def ops_message(self, notice: OpsNotice) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[incident-responder] {notice.title}"[:250]
        message["From"] = self.options.sender
        message["To"] = ", ".join(self.options.to)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{notice.delivery_id}@{self.options.sender.rpartition('@')[2] or 'incident-responder'}>"
        message.set_content(f"{notice.text}\n\n{notice.link}\n")
        return message

    def send(self, notice: Notice) -> None:
        self._session(lambda client: client.send_message(self.message(notice)))

    def send_ops(self, notice: OpsNotice) -> None:
        self._session(lambda client: client.send_message(self.ops_message(notice)))

    def check(self) -> str:
        self._session(lambda client: client.noop())
        signed_in = ", credentials accepted" if self._user is not None else ""
        return f"SMTP {self.options.host}:{self.options.port} answers ({self.options.security}{signed_in})"

    def _session(self, act: Callable[[smtplib.SMTP], object]) -> None:
        """Connect, secure, sign in and `act`; SMTP's answers become RetryableError (4xx, network) or SourceError (5xx, auth)."""
        options = self.options
        try:
            if options.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    options.host, options.port, timeout=options.timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(options.host, options.port, timeout=options.timeout_s)
            with client:
                if options.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self._user is not None and self._password is not None:
                    client.login(self._user.get_secret_value(), self._password.get_secret_value())
                act(client)
        except smtplib.SMTPAuthenticationError:
            raise SourceError(f"{options.host} refused the SMTP credentials") from None
        except smtplib.SMTPRecipientsRefused:
            raise SourceError(f"{options.host} refused the recipients {', '.join(options.to)}") from None
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later (greylisting, a full queue); 5xx: it will not work.
            if 400 <= exc.smtp_code < 500:
                raise RetryableError(f"{options.host} answered {exc.smtp_code}") from None
            raise SourceError(f"{options.host} answered {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryableError(f"{options.host}:{options.port} did not take the mail: {type(exc).__name__}") from None


def _check(notifier: EmailNotifier) -> str:
    return notifier.check()


def _build(options: EmailOptions, _base_dir: Path) -> EmailNotifier:
    return EmailNotifier(options)


KIND = SourceKind(
    name="email",
    role=roles.NOTIFY,
    options=EmailOptions,
    build=_build,
    check=_check,
    summary="the report by e-mail (text and HTML) over SMTP with STARTTLS or TLS",
)
