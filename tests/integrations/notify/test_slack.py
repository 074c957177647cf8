"""The `slack` notifier against the Slack Web API stand-in, through slack_sdk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_slack import SlackStandin, error, rate_limited

from contracts import NOTICE, SECRET_DIR, Broken, NotifierContract, build
from integrations.errors import SourceError
from integrations.notify import slack_channel
from integrations.remote_calls import RetryableError


@pytest.fixture
def slack_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandin]:
    standin = SlackStandin().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    yield standin
    standin.stop()


class TestSlackChannelContract(NotifierContract):
    kind = slack_channel.KIND

    @pytest.fixture
    def make_source(self, slack_api: SlackStandin) -> Any:
        return lambda: {"channel": "C0LEADS", "api_url": slack_api.api_url}

    @pytest.fixture
    def delivered(self, slack_api: SlackStandin) -> Any:
        return lambda: [str(call.params.get("text", "")) for call in slack_api.of("chat.postMessage")]

    @pytest.fixture
    def broken_source(self, monkeypatch: pytest.MonkeyPatch) -> Broken:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        url = f"http://127.0.0.1:9/{SECRET_DIR}/api/"
        return Broken({"channel": "C0LEADS", "api_url": url}, target=url)


def test_the_message_names_the_service_cause_and_links_the_report(slack_api: SlackStandin, tmp_path: Path) -> None:
    build(slack_channel.KIND, {"channel": "C0LEADS", "api_url": slack_api.api_url}, tmp_path).send(NOTICE)

    [call] = slack_api.of("chat.postMessage")
    assert call.params["channel"] == "C0LEADS"
    assert call.params["text"].startswith("*svc*: checkout: 502s on /pay\nbad deploy (82%)")
    assert f"<{NOTICE.report_url}|Full report>" in call.params["text"]


def test_not_in_channel_is_permanent_and_rate_limits_are_retried(slack_api: SlackStandin, tmp_path: Path) -> None:
    notifier = build(slack_channel.KIND, {"channel": "C0LEADS", "api_url": slack_api.api_url}, tmp_path)
    slack_api.script("chat.postMessage", error("not_in_channel"))
    with pytest.raises(SourceError, match="not_in_channel") as refused:
        notifier.send(NOTICE)
    assert not isinstance(refused.value, RetryableError)
    slack_api.script("chat.postMessage", rate_limited(3))
    with pytest.raises(RetryableError, match="ratelimited"):
        notifier.send(NOTICE)
    notifier.send(NOTICE)
    assert len([c for c in slack_api.of("chat.postMessage") if c.status == 200]) >= 1
