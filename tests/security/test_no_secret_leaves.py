"""Planted secrets in logs, a commit and metric labels never leave the system: not to Slack, Jira or the LLM (every
request body their stand-ins received), not through the REST API, the dashboard, /metrics or an error response,
and not in the web or worker process's own JSON log lines, while the investigation itself still works.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bot_harness import fixture
from harness import EXAMPLE_AT, Stack, Web, slack_surface, until
from planted import CREDENTIAL_URL, ERROR_SIGNATURE, NEEDLES, PASSWORD_KV, SECRET_FILE, leaks, leaks_in
from standin_jira import JiraStandin
from standin_openai import Call, Reply, StandinOpenAI
from standin_slack import SlackStandin

from core.models import Investigation, Status
from core.store import Store
from web.auth import create_api_key

CHANNEL = "C0INCIDENT"
ONCALL = "U0ONCALL1"
CULPRIT = "0228e444839f2706efaf4816354ac4103d01ad66"


def llm_script(call: Call) -> Reply:
    """Specialists answer in prose, the commander with a verdict; the diff question fails so the evidence answers it."""
    system = call.system.lower()
    everything = call.text
    if "you are incident commander" in system:
        return Reply.json(
            {
                "category": "bad_deploy",
                "component": "checkout",
                "confidence": 0.85,
                "summary": f"Commit {CULPRIT[:8]} made apply_discount raise TypeError: {ERROR_SIGNATURE}.",
                "blamed_commits": [{"sha": CULPRIT[:10], "likelihood": 0.9, "reason": "it added the failing line in checkout/pricing.py"}],
                "cited_files": ["checkout/pricing.py"],
                "cited_metrics": ["http_5xx_ratio"],
                "actions": [{"title": "Roll back checkout to v1.7.3", "detail": "", "kind": "mitigate", "runbook": None}],
            }
        )
    if "answer the engineer's question" in everything.lower():
        if SECRET_FILE in everything:
            return Reply.error(503)
        return Reply.text(f"Commit {CULPRIT[:8]} (PROMO-231) is the suspect: it added the failing line.")
    return Reply.text(f"Finding: the TypeError signature starts at 13:31:58, right after the deploy of {CULPRIT[:8]}.")


def investigate_command() -> dict[str, str]:
    return {
        "command": "/investigate",
        "text": f"checkout 5xx --at {EXAMPLE_AT}",
        "user_id": ONCALL,
        "channel_id": CHANNEL,
        "trigger_id": "7777.8888.security",
    }


def finished(db: Store) -> Investigation | None:
    rows, _ = db.list_investigations()
    return rows[0] if rows and Status(rows[0].status).finished else None


def is_report(params: dict[str, Any]) -> bool:
    return any(b.get("type") == "header" for b in params.get("blocks") or [])


def ask(web: Web, slack: SlackStandin, investigation: Investigation, question: str, n: int) -> str:
    reply = fixture("thread_reply.json")
    reply["event_id"] = f"Ev0SECURITY{n}"
    reply["event"] |= {"thread_ts": investigation.slack_thread_ts, "text": question, "ts": f"1748555300.00070{n}"}
    reply["event"]["blocks"][0]["elements"][0]["elements"][0]["text"] = question
    assert slack_surface(web).event(reply).status_code == 200
    before = {id(c) for c in slack.calls}

    def answered() -> list[Any]:
        return [
            c
            for c in slack.of("chat.postMessage", thread_ts=investigation.slack_thread_ts)
            if id(c) not in before and c.params["text"].startswith(f"<@{ONCALL}>")
        ]

    return str(slack.wait_for(answered, timeout=30)[0].params["text"])


@pytest.fixture
def api_key(security_env: dict[str, str]) -> str:
    return create_api_key("security", ["admin"], store=Store.from_url(security_env["DATABASE_URL"]))[0]


@pytest.fixture
def dashboard(stack: Stack, api_key: str) -> Iterator[tuple[Web, httpx.Client]]:
    web = stack.web()
    with web.client() as browser:
        assert browser.post("/login", data={"key": api_key, "next": "/investigations"}).status_code == 303
        yield web, browser


@pytest.mark.slow
def test_planted_secrets_reach_no_stand_in_response_log_or_metric_while_the_investigation_succeeds(
    stack: Stack,
    dashboard: tuple[Web, httpx.Client],
    api_key: str,
    slack: SlackStandin,
    jira: JiraStandin,
    llm: StandinOpenAI,
    security_env: dict[str, str],
) -> None:
    llm.script = llm_script
    web, browser = dashboard
    worker = stack.worker()
    db = Store.from_url(security_env["DATABASE_URL"])

    assert slack_surface(web).command(investigate_command()).status_code == 200
    investigation = until(lambda: finished(db), timeout=60, every=0.3, what="the investigation finishing")
    slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if is_report(c.params)])
    answer_llm = ask(web, slack, investigation, "which commit broke it?", 1)
    answer_diff = ask(web, slack, investigation, f"what changed in {SECRET_FILE}?", 2)

    action = fixture("block_actions_create_jira.json")
    action["actions"][0]["value"] = json.dumps({"investigation_id": investigation.id})
    assert slack_surface(web).action(action).status_code == 200
    until(lambda: jira.created(), timeout=30, what="the Jira ticket")
    slack.wait_for(lambda: [c for c in slack.of("chat.postMessage") if ":ticket: Jira ticket" in c.params.get("text", "")])

    api = web.client(api_key)
    base = f"/api/v1/investigations/{investigation.id}"
    responses = {
        "api detail": api.get(base),
        "api list": api.get("/api/v1/investigations"),
        "report json": api.get(f"{base}/report", params={"format": "json"}),
        "report markdown": api.get(f"{base}/report", params={"format": "markdown"}),
        "report html": api.get(f"{base}/report", params={"format": "html"}),
        "dashboard detail": browser.get(f"/investigations/{investigation.id}"),
        "dashboard list": browser.get("/investigations"),
        "metrics": httpx.get(f"{web.url}/metrics", timeout=15),
        "error 404": api.get("/api/v1/investigations/inv_doesnotexist0"),
        "error 409": api.post(f"{base}/jira"),
        # Errors that quote what they were given: a caller pasting a secret must not get it echoed into proxies and logs.
        "error unknown service": api.post("/api/v1/investigations", json={"service": f"checkout {CREDENTIAL_URL}", "alert_text": "5xx"}),
        "error validation": api.post(
            "/api/v1/investigations", json={"service": "checkout", "alert_text": "5xx", "at": f"password={PASSWORD_KV}"}
        ),
    }
    for name, response in responses.items():
        assert response.status_code < 500, (name, response.status_code)

    # Not vacuous: the investigation worked, the crew and the stand-ins were used, and the secrets were in its evidence.
    final = db.require(investigation.id)
    assert final.status == Status.done.value, (final.status, final.report and final.report["degraded"])
    report = responses["report json"].json()
    assert report["analyst"] == "crew"
    assert report["root_cause"]["category"] == "bad_deploy"
    assert ERROR_SIGNATURE in json.dumps(report["signatures"])
    assert "[REDACTED]" in responses["report markdown"].text and "[EMAIL]" in responses["report markdown"].text
    assert any(s["sha"].startswith(CULPRIT[:8]) for s in report["suspect_commits"])
    assert len(llm.calls) >= 3 and any("[REDACTED]" in c.text for c in llm.calls)
    assert "PROMO-231" in answer_llm
    assert SECRET_FILE in answer_diff and "[REDACTED]" in answer_diff, answer_diff
    assert len(jira.created()) == 1 and ERROR_SIGNATURE in jira.created()[0]["fields"]["description"]
    assert responses["metrics"].status_code == 200 and "ir_investigations" in responses["metrics"].text
    assert [responses[f"error {kind}"].status_code for kind in ("unknown service", "validation")] == [422, 422]
    assert responses["error 404"].status_code == 404 and responses["error 404"].json()["error"]["code"] == "INVESTIGATION_NOT_FOUND"
    assert responses["dashboard detail"].status_code == 200 and ERROR_SIGNATURE.split(":")[0] in responses["dashboard detail"].text
    worker_log = worker.text()
    assert '"event"' in worker_log, "the worker logged in JSON"

    found = [
        *leaks_in("slack", (json.dumps(c.params) for c in slack.calls)),
        *leaks_in("jira", (json.dumps(r.body) for r in jira.requests)),
        *leaks_in("llm", (c.text for c in llm.calls)),
        *(f"{name}: {leak}" for name, response in responses.items() for leak in leaks(response.text)),
        *leaks_in("worker log", [worker_log]),
        *leaks_in("web log", [p.text() for p in stack.procs if p.name == "web"]),
        *leaks_in("stored report", [json.dumps(final.report)]),
    ]
    assert not found, "\n".join(sorted(set(found)))
    assert len(NEEDLES) == 11
