"""A finished report's summary posted to a Slack channel other than the alert's thread (a team's or a leads' channel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.notify.base import Notice, OpsNotice
from integrations.plugin import EnvVarName, SourceKind, SourceOptions, secret_from_env
from integrations.remote_calls import RetryableError


class SlackChannelOptions(SourceOptions):
    channel: str = Field(min_length=1, description="channel id (C0...) the bot is a member of")
    token_env: EnvVarName = Field("SLACK_BOT_TOKEN", description="environment variable holding the bot token")
    api_url: str | None = Field(None, description="Slack Web API base URL (default SLACK_API_URL, else Slack's)")


class SlackChannelNotifier:
    def __init__(self, options: SlackChannelOptions) -> None:
        self.name = options.name or "slack"
        self.options = options
        self._token = secret_from_env(options.token_env, purpose="Slack bot token")
        from core.settings import get_settings

        self.api_url = options.api_url or get_settings().slack_api_url

    @property
    def target(self) -> str:
        return f"Slack channel {self.options.channel}"

    def client(self) -> Any:
        from slack_sdk import WebClient

        return WebClient(token=self._token.get_secret_value(), base_url=self.api_url, timeout=10)

    def send(self, notice: Notice) -> None:
        cause = f"{notice.category.replace('_', ' ')} ({notice.confidence:.0%})"
        text = f"*{notice.service}*: {notice.title}\n{cause}: {notice.summary}\n<{notice.report_url}|Full report>"
        if notice.thread_url:
            text += f" · <{notice.thread_url}|thread>"
        self._post(text)

    def send_ops(self, notice: OpsNotice) -> None:
        self._post(f":rotating_light: *{notice.title}*\n{notice.text}\n<{notice.link}|Open>")

    def _post(self, text: str) -> None:
        from slack_sdk.errors import SlackApiError

        try:
            self.client().chat_postMessage(channel=self.options.channel, text=text, unfurl_links=False)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if exc.response.status_code == 429 or exc.response.status_code >= 500:
                raise RetryableError(f"{self.target}: Slack answered {error}") from None
            raise SourceError(f"{self.target}: Slack refused the message ({error})") from None
        except OSError as exc:
            raise RetryableError(f"{self.target}: the Slack API at {self.api_url} did not answer ({type(exc).__name__})") from None


def _check(notifier: SlackChannelNotifier) -> str:
    from slack_sdk.errors import SlackApiError

    try:
        who = notifier.client().auth_test()
    except SlackApiError as exc:
        raise SourceError(f"{notifier.target}: Slack refused the token ({exc.response.get('error')})") from None
    except OSError as exc:
        raise SourceError(f"{notifier.target}: the Slack API at {notifier.api_url} did not answer ({type(exc).__name__})") from None
    return f"{notifier.target}: token accepted as {who.get('user', '?')} in {who.get('team', '?')}"


def _build(options: SlackChannelOptions, _base_dir: Path) -> SlackChannelNotifier:
    return SlackChannelNotifier(options)


KIND = SourceKind(
    name="slack",
    role=roles.NOTIFY,
    options=SlackChannelOptions,
    build=_build,
    check=_check,
    summary="the report's summary and link in a Slack channel (besides the alert's thread)",
)
