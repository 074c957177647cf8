"""Every inbound kind delivered twice (Slack retries, double clicks, PagerDuty redelivery) has one effect."""

from __future__ import annotations

import json
from typing import Any

from bot_harness import fixture
from harness import EXAMPLE_AT, Stack, pagerduty_delivery, slack_surface, until
from standin_jira import JiraStandin
from standin_slack import SlackStandin

from core.models import Source, Status
from core.store import Store

CHANNEL = "C0INCIDENT"


def as_checkout(payload: dict[str, Any]) -> dict[str, Any]:
    """A captured PagerDuty post for another service, retargeted at the catalog's checkout service."""
    raw = json.dumps(payload).replace("PNW0RK1", "PCHECKOUT").replace("Notifications Worker", "Checkout API")
    result: dict[str, Any] = json.loads(raw)
    return result


def all_finished(db: Store) -> bool:
    rows, _ = db.list_investigations()
    return bool(rows) and all(Status(r.status).finished for r in rows)


def test_duplicate_deliveries_of_every_inbound_kind_have_one_effect_each(
    stack: Stack, slack: SlackStandin, jira: JiraStandin, db: Store
) -> None:
    web = stack.web()
    stack.worker()
    surface = slack_surface(web)

    command = {
        "command": "/investigate",
        "text": f"checkout 5xx --at {EXAMPLE_AT}",
        "user_id": "U0ONCALL1",
        "channel_id": CHANNEL,
        "trigger_id": "4444.5555.dup",
    }
    assert [surface.command(command).status_code for _ in range(2)] == [200, 200]

    post = as_checkout(fixture("pagerduty_post_triggered.json"))
    assert surface.event(post).status_code == 200
    assert surface.event(post, retry_num=1).status_code == 200

    body, headers = pagerduty_delivery("PDUP0001")
    webhook = web.client()
    first, again = (webhook.post("/webhooks/pagerduty", content=body, headers=headers) for _ in range(2))
    assert (first.status_code, again.json()["status"]) == (201, "duplicate")
    other_event, other_headers = pagerduty_delivery("PDUP0001", event_id="EV-second-delivery-same-incident")
    assert webhook.post("/webhooks/pagerduty", content=other_event, headers=other_headers).json()["status"] == "existing"

    until(lambda: all_finished(db) and len(db.list_investigations()[0]) == 3, timeout=90, every=0.5, what="three investigations done")
    rows, _ = db.list_investigations()
    kinds = (Source.slack_command, Source.pagerduty_post, Source.pagerduty_webhook)
    assert sorted(r.source for r in rows) == sorted(s.value for s in kinds)
    roots = [c for c in slack.of("chat.postMessage", channel=CHANNEL) if "thread_ts" not in c.params]
    assert len(roots) == 1, "one root message for the one slash command"

    from_command = next(r for r in rows if r.source == Source.slack_command.value)
    question = fixture("thread_reply.json")
    question["event"]["thread_ts"] = from_command.slack_thread_ts
    assert surface.event(question).status_code == 200
    assert surface.event(question, retry_num=1).status_code == 200

    click = fixture("block_actions_create_jira.json")
    click["actions"][0]["value"] = json.dumps({"investigation_id": from_command.id})
    assert [surface.action(click).status_code for _ in range(2)] == [200, 200]

    until(
        lambda: jira.created() and db.get_jira(from_command.id) and db.get_jira(from_command.id).key,  # type: ignore[union-attr]
        timeout=60,
        what="the Jira ticket",
    )
    until(
        lambda: all(f.status == "answered" for f in db.follow_ups(from_command.id)) and db.follow_ups(from_command.id),
        timeout=60,
        what="the answer",
    )
    slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if ":ticket: Jira ticket" in c.params.get("text", "")])
    assert len(db.follow_ups(from_command.id)) == 1
    # The answer is stored first and posted by the worker's progress listener just after: wait for the post.
    answers = slack.wait_for(
        lambda: [
            c for c in slack.of("chat.postMessage", thread_ts=from_command.slack_thread_ts) if c.params["text"].startswith("<@U0ONCALL1>")
        ]
    )
    assert len(answers) == 1
    assert len(jira.created()) == 1
    assert len([c for c in slack.of("chat.postEphemeral") if "Creating the Jira ticket" in c.params.get("text", "")]) == 1
    assert len(db.list_investigations()[0]) == 3
