"""The `teams` notifier against a loopback stand-in for a Teams Workflows webhook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_receiver import Answer, Receiver

from contracts import NOTICE, SECRET_DIR, Broken, NotifierContract, build
from integrations.notify import teams
from integrations.remote_calls import RetryableError


@pytest.fixture
def workflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    server = Receiver(ok_status=202).start()
    # A real Workflows URL carries its credential as `sig=`: it lives in the environment, never in the catalog.
    monkeypatch.setenv("TEAMS_OPS_URL", f"{server.url}/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t-signature")
    yield server
    server.stop()


class TestTeamsContract(NotifierContract):
    kind = teams.KIND

    @pytest.fixture
    def make_source(self, workflow: Receiver) -> Any:
        return lambda: {"url_env": "TEAMS_OPS_URL", "timeout_s": 3}

    @pytest.fixture
    def delivered(self, workflow: Receiver) -> Any:
        return lambda: [got.body.decode() for got in workflow.received]

    @pytest.fixture
    def broken_source(self, monkeypatch: pytest.MonkeyPatch) -> Broken:
        url = f"http://127.0.0.1:9/{SECRET_DIR}"
        monkeypatch.setenv("TEAMS_BROKEN_URL", url)
        return Broken({"url_env": "TEAMS_BROKEN_URL", "timeout_s": 2}, target=url)


def test_the_card_is_an_adaptive_card_message_with_the_report_link(workflow: Receiver, tmp_path: Path) -> None:
    build(teams.KIND, {"url_env": "TEAMS_OPS_URL"}, tmp_path).send(NOTICE)

    [got] = workflow.received
    assert got.path.startswith("/workflows/abc/") and "sig=s3cr3t-signature" in got.path
    message = got.json()
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == NOTICE.title
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts == {"Service": "svc", "Cause": "bad deploy (82%)", "Likely change": NOTICE.culprit}
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "Open the report", "url": NOTICE.report_url}


def test_throttling_is_retryable_and_the_urls_signature_never_appears_in_errors(workflow: Receiver, tmp_path: Path) -> None:
    notifier = build(teams.KIND, {"url_env": "TEAMS_OPS_URL"}, tmp_path)
    workflow.script(Answer(429, {"Retry-After": "2"}))

    with pytest.raises(RetryableError) as throttled:
        notifier.send(NOTICE)

    assert throttled.value.wait_s == 2.0
    assert "s3cr3t" not in str(throttled.value) and "/workflows/abc/triggers/manual/paths/invoke" in str(throttled.value)
