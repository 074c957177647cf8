"""A finished report as an Adaptive Card in a Microsoft Teams channel, through a Workflows (or incoming) webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.notify.base import Notice, OpsNotice
from integrations.notify.webhook import _retry_after
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import RetryableError


class TeamsOptions(SourceOptions):
    # The webhook URL carries its own credential (the `sig=` parameter): it is a secret, so it comes from the environment.
    url_env: EnvVarName = Field(description="environment variable holding the Teams Workflows webhook URL")
    timeout_s: float = Field(10.0, gt=0, description="longest wait for Teams")


def adaptive_card(notice: Notice) -> dict[str, Any]:
    """The message a Workflows "post to a channel when a webhook request is received" flow posts as is."""
    facts = [
        {"title": "Service", "value": notice.service},
        {"title": "Cause", "value": f"{notice.category.replace('_', ' ')} ({notice.confidence:.0%})"},
    ]
    if notice.culprit:
        facts.append({"title": "Likely change", "value": notice.culprit})
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": notice.title, "wrap": True},
        {"type": "TextBlock", "text": notice.summary, "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    if notice.actions:
        body.append({"type": "TextBlock", "text": "\n".join(f"- {a}" for a in notice.actions[:5]), "wrap": True})
    if notice.degraded:
        body.append({"type": "TextBlock", "text": "Some evidence was missing; see the report.", "isSubtle": True, "wrap": True})
    actions = [{"type": "Action.OpenUrl", "title": "Open the report", "url": notice.report_url}]
    if notice.thread_url:
        actions.append({"type": "Action.OpenUrl", "title": "Slack thread", "url": notice.thread_url})
    return _message(body, actions)


def ops_card(notice: OpsNotice) -> dict[str, Any]:
    """The responder's own trouble as a card: what happened, and a link to look further."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": notice.title, "wrap": True, "color": "Attention"},
        {"type": "TextBlock", "text": notice.text, "wrap": True},
        {"type": "FactSet", "facts": [{"title": "Signal", "value": notice.signal}, {"title": "About", "value": notice.subject}]},
    ]
    return _message(body, [{"type": "Action.OpenUrl", "title": "Open", "url": notice.link}])


def _message(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }


class TeamsNotifier:
    def __init__(self, options: TeamsOptions, *, transport: httpx.BaseTransport | None = None) -> None:
        self.name = options.name or "teams"
        self.options = options
        self._url = secret_from_env(options.url_env, purpose="Teams webhook URL")
        self._transport = transport

    @property
    def target(self) -> str:
        # The query carries the credential (`sig=`): the target is the rest, enough to tell which flow.
        return str(httpx.URL(self._url.get_secret_value()).copy_with(query=None, userinfo=b""))

    def send(self, notice: Notice) -> None:
        self._post(adaptive_card(notice))

    def send_ops(self, notice: OpsNotice) -> None:
        self._post(ops_card(notice))

    def _post(self, message: dict[str, Any]) -> None:
        try:
            with httpx.Client(timeout=self.options.timeout_s, transport=self._transport) as client:
                response = client.post(self._url.get_secret_value(), json=message)
        except httpx.HTTPError as exc:
            raise RetryableError(f"{self.target} did not answer: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"{self.target} answered {response.status_code}", wait_s=_retry_after(response))
        if response.status_code >= 300:
            raise SourceError(f"{self.target} refused the card ({response.status_code})")


def _check(notifier: TeamsNotifier) -> str:
    # A HEAD without the signature posts nothing: any HTTP answer shows the flow's host is there.
    try:
        with httpx.Client(timeout=notifier.options.timeout_s) as client:
            response = client.head(notifier.target)
    except httpx.HTTPError as exc:
        raise SourceError(f"{notifier.target} did not answer: {type(exc).__name__}") from None
    if response.status_code >= 500:
        raise SourceError(f"{notifier.target} answered {response.status_code}")
    return f"{notifier.target} answers (HEAD {response.status_code}); the card is posted only with the signed URL"


def _build(options: TeamsOptions, _base_dir: Path) -> TeamsNotifier:
    return TeamsNotifier(options)


KIND = SourceKind(
    name="teams",
    role=roles.NOTIFY,
    options=TeamsOptions,
    build=_build,
    check=_check,
    summary="an Adaptive Card in a Teams channel through a Workflows webhook",
)
