"""The Slack surface end to end: signed HTTP requests into the real Bolt app, a real RQ worker, Slack and Jira stand-ins."""

from __future__ import annotations

import copy
import threading
from typing import Any

from bot_harness import WebServer, Worker, fixture, slack_headers
from standin_jira import JiraStandin
from standin_slack import SlackStandin, rate_limited

from core.models import Investigation
from core.runtime import get_store

CHANNEL = "C0INCIDENT"


def _report_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if any(b.get("type") == "header" for b in c.params.get("blocks") or [])]


def _only_investigation() -> Investigation:
    rows, _ = get_store().list_investigations()
    assert len(rows) == 1, [r.id for r in rows]
    return rows[0]


def _start_from_command(web: WebServer, slack: SlackStandin, worker: Worker) -> Investigation:
    response = web.command(fixture("slash_command.json"))
    assert response.status_code == 200
    worker.until(lambda: _report_posts(slack))
    return _only_investigation()


def test_slash_command_acks_then_posts_the_report_in_the_thread(web: WebServer, slack: SlackStandin, worker: Worker) -> None:
    response = web.command(fixture("slash_command.json"))

    assert response.status_code == 200
    assert "Queued an investigation of *notifications-worker*" in response.text
    reports = worker.until(lambda: _report_posts(slack))
    root = slack.of("chat.postMessage", channel=CHANNEL)[0]
    assert "started an investigation of *notifications-worker*" in root.params["text"]
    assert "thread_ts" not in root.params
    investigation = _only_investigation()
    thread_ts = investigation.slack_thread_ts
    assert investigation.status in ("done", "degraded") and investigation.slack_report_ts
    assert [r.params["thread_ts"] for r in reports] == [thread_ts]
    blocks = reports[0].params["blocks"]
    assert len(blocks) <= 50
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons[:2] == ["ir_create_jira", "ir_rerun"]
    assert reports[0].params["text"].strip()
    assert investigation.slack_status_ts and investigation.slack_status_ts != thread_ts
    finals = slack.of("chat.update", ts=investigation.slack_status_ts)
    assert finals and "Report ready" in finals[-1].params["text"]
    milestones = [
        c.params["text"] for c in slack.of("chat.postMessage", thread_ts=thread_ts) if c.params["text"].startswith(":small_blue_diamond:")
    ]
    assert any("Evidence gathered" in m for m in milestones)


def test_pagerduty_post_and_its_edits_to_acknowledged_and_resolved_start_one_investigation(
    web: WebServer, slack: SlackStandin, worker: Worker
) -> None:
    triggered = fixture("pagerduty_post_triggered.json")
    assert web.event(triggered).status_code == 200
    worker.until(lambda: _report_posts(slack))
    assert web.event(fixture("pagerduty_post_acknowledged.json")).status_code == 200
    assert web.event(fixture("pagerduty_post_resolved.json")).status_code == 200
    assert web.event(copy.deepcopy(triggered) | {"event_id": "Ev0PDREPOST"}).status_code == 200

    resolved_note = slack.wait_for(
        lambda: [c for c in slack.of("chat.postMessage") if "marked incident #4812 resolved" in c.params["text"]]
    )
    worker.drain()
    investigation = _only_investigation()
    assert investigation.pagerduty_incident_id == "Q3KH1MAQKR6B6Z"
    assert investigation.service == "notifications-worker"
    assert (investigation.slack_channel, investigation.slack_thread_ts) == (CHANNEL, triggered["event"]["ts"])
    assert len(resolved_note) == 1 and resolved_note[0].params["thread_ts"] == triggered["event"]["ts"]
    assert len(_report_posts(slack)) == 1


def test_thread_question_gets_one_answer_even_when_slack_retries_the_event(web: WebServer, slack: SlackStandin, worker: Worker) -> None:
    investigation = _start_from_command(web, slack, worker)
    reply = fixture("thread_reply.json")
    reply["event"]["thread_ts"] = investigation.slack_thread_ts

    assert web.event(reply).status_code == 200
    assert web.event(reply, retry_num=1).status_code == 200
    assert web.event(reply | {"event_id": "Ev0THREADDUP"}).status_code == 200

    def answers() -> list[Any]:
        return [
            c for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts) if c.params["text"].startswith("<@U0ONCALL1>")
        ]

    worker.until(answers)
    worker.drain()
    posted = answers()
    assert len(posted) == 1
    assert "Suspect changes" in posted[0].params["text"]
    assert "17208686" in posted[0].params["text"]
    follow_ups = get_store().follow_ups(investigation.id)
    assert [(f.question, f.status, f.answered_by) for f in follow_ups] == [("which commit?", "answered", "offline")]


def test_question_about_a_file_is_answered_with_its_diff_from_the_repository(web: WebServer, slack: SlackStandin, worker: Worker) -> None:
    investigation = _start_from_command(web, slack, worker)
    reply = fixture("thread_reply.json")
    reply["event"] |= {
        "thread_ts": investigation.slack_thread_ts,
        "text": "what changed in config/production.yaml?",
        "ts": "1748555200.000700",
    }
    reply["event_id"] = "Ev0THREADFILE"

    assert web.event(reply).status_code == 200

    answer = worker.until(
        lambda: [c for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts) if "changed `" in c.params["text"]]
    )
    assert "timeout_ms" in answer[0].params["text"] and "```" in answer[0].params["text"]


def test_three_concurrent_create_jira_clicks_file_one_issue(web: WebServer, slack: SlackStandin, jira: JiraStandin, worker: Worker) -> None:
    investigation = _start_from_command(web, slack, worker)
    clicks = []
    for n in range(3):
        payload = fixture("block_actions_create_jira.json")
        payload["actions"][0]["value"] = f'{{"investigation_id":"{investigation.id}"}}'
        payload["actions"][0]["action_ts"] = f"1748555060.12345{n}"
        payload["user"]["id"] = f"U0CLICK{n}"
        clicks.append(payload)
    responses: list[int] = []
    threads = [threading.Thread(target=lambda p=p: responses.append(web.action(p).status_code)) for p in clicks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert responses == [200, 200, 200]

    worker.until(lambda: get_store().get_jira(investigation.id) and get_store().get_jira(investigation.id).key)  # type: ignore[union-attr]
    link = slack.wait_for(
        lambda: [
            c for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts) if ":ticket: Jira ticket" in c.params["text"]
        ]
    )
    assert len(jira.created()) == 1
    issue = jira.created()[0]["fields"]
    assert issue["summary"].startswith("[notifications-worker] ") and len(issue["summary"]) < 255
    assert {"incident", "notifications-worker", f"ir-{investigation.id}"} <= set(issue["labels"])
    assert issue["project"] == {"key": "NOTIF"} and issue["priority"] == {"name": "High"}
    assert "h2. Root cause" in issue["description"] and "standin.slack.com/archives" in issue["description"]
    assert len(link) == 1 and "NOTIF-1" in link[0].params["text"]
    updated = slack.wait_for(lambda: slack.of("chat.update", ts=investigation.slack_report_ts))
    assert any("Jira: NOTIF-1" in str(c.params["blocks"]) for c in updated)

    again = fixture("block_actions_create_jira.json")
    again["actions"][0]["value"] = f'{{"investigation_id":"{investigation.id}"}}'
    again["actions"][0]["action_ts"] = "1748555999.000001"
    assert web.action(again).status_code == 200
    existing = slack.wait_for(lambda: [c for c in slack.of("chat.postEphemeral") if "already has a ticket" in c.params["text"]])
    assert "NOTIF-1" in existing[0].params["text"]
    assert len(jira.created()) == 1


def test_rate_limited_slack_calls_are_retried_and_nothing_is_lost(web: WebServer, slack: SlackStandin, worker: Worker) -> None:
    slack.script("chat.postMessage", rate_limited(1), rate_limited(1))
    slack.script("chat.update", rate_limited(1))

    investigation = _start_from_command(web, slack, worker)

    limited = [c for c in slack.calls if c.status == 429]
    assert len(limited) == 3
    root = slack.of("chat.postMessage", channel=CHANNEL)
    assert root and "thread_ts" not in root[0].params
    assert investigation.slack_report_ts and investigation.slack_status_ts
    assert len(_report_posts(slack)) == 1


def test_badly_signed_requests_are_refused_with_401(web: WebServer, slack: SlackStandin) -> None:
    from urllib.parse import urlencode

    body = urlencode(fixture("slash_command.json")).encode()
    wrong_secret = web.http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body, secret="nope")}
    )
    stale = web.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body, timestamp=1_600_000_000)},
    )
    unsigned = web.http.post("/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert [wrong_secret.status_code, stale.status_code, unsigned.status_code] == [401, 401, 401]
    assert get_store().list_investigations()[0] == []
    assert not slack.of("chat.postMessage")
