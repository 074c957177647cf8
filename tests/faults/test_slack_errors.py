"""Slack answering 429 with Retry-After, 500s and `ok: false`: calls are retried or the user is told, and nothing
is posted twice. Assertions are on what the Slack stand-in recorded.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from harness import EXAMPLE_AT, Stack, investigate_command, slack_surface, until
from standin_slack import Call, Reply, SlackStandin, error, rate_limited, server_error

from core.models import Status
from core.store import Store


def command(trigger: str) -> dict[str, str]:
    return investigate_command(trigger, text=f"checkout 5xx --at {EXAMPLE_AT}")


def finished(db: Store) -> Any:
    rows, _ = db.list_investigations()
    return rows[0] if rows and Status(rows[0].status).finished else None


def is_report_blocks(params: dict[str, Any]) -> bool:
    return any(b.get("type") == "header" for b in params.get("blocks") or [])


def is_report(call: Call) -> bool:
    return is_report_blocks(call.params)


def test_rate_limits_and_server_errors_from_slack_are_retried_without_duplicate_posts(stack: Stack, slack: SlackStandin, db: Store) -> None:
    slack.script("chat.postMessage", rate_limited(1), server_error(), rate_limited(1))
    slack.script("chat.update", server_error(), rate_limited(1))
    web = stack.web()
    stack.worker()

    assert slack_surface(web).command(command("5555.6666.retry")).status_code == 200
    investigation = until(lambda: finished(db), timeout=90, every=0.5, what="the investigation finishing")
    until(lambda: [c for c in slack.of("chat.postMessage") if is_report(c)], timeout=30, what="the report")

    statuses = Counter(c.status for c in slack.calls)
    assert statuses[429] == 3 and statuses[500] == 2
    posted = Counter((c.params.get("thread_ts"), c.params.get("text")) for c in slack.of("chat.postMessage"))
    assert all(n == 1 for n in posted.values()), [k for k, n in posted.items() if n > 1]
    assert len([c for c in slack.of("chat.postMessage") if is_report(c)]) == 1
    until(lambda: db.require(investigation.id).slack_report_ts, timeout=10, what="the report's ts stored")
    assert db.require(investigation.id).slack_status_ts


def test_slack_refusing_the_root_post_tells_the_user_and_starts_nothing(stack: Stack, slack: SlackStandin, db: Store) -> None:
    slack.script("chat.postMessage", error("not_in_channel"))
    web = stack.web()
    stack.worker()

    assert slack_surface(web).command(command("5555.6666.refused")).status_code == 200

    told = slack.wait_for(lambda: [c for c in slack.of("chat.postEphemeral") if "not_in_channel" in c.params.get("text", "")])
    assert "/invite" in told[0].params["text"]
    assert db.list_investigations()[0] == []


def test_slack_refusing_the_report_blocks_gets_the_plain_text_report_once(stack: Stack, slack: SlackStandin, db: Store) -> None:
    answer = slack._answer

    def refuse_report_blocks(method: str, params: dict[str, Any], headers: dict[str, str]) -> Reply:
        if method == "chat.postMessage" and is_report_blocks(params):
            with slack._lock:
                # Recorded with a non-200 status so `slack.of()` lists only what Slack accepted.
                slack.calls.append(Call(method, params, headers, 400, time.monotonic()))
            return error("invalid_blocks")
        return answer(method, params, headers)

    slack._answer = refuse_report_blocks
    web = stack.web()
    stack.worker()

    assert slack_surface(web).command(command("5555.6666.blocks")).status_code == 200
    investigation = until(lambda: finished(db), timeout=90, every=0.5, what="the investigation finishing")

    fallback = slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if "could not be posted" in c.params.get("text", "")])
    assert len(fallback) == 1 and investigation.id in fallback[0].params["text"]
    assert fallback[0].params["thread_ts"] == investigation.slack_thread_ts
    until(lambda: db.require(investigation.id).slack_report_ts, timeout=10, what="the fallback recorded as the report")
