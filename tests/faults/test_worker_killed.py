"""A worker killed with SIGKILL mid-investigation: the job runs again, or the investigation ends failed with the reason
in the thread. The slow part is the LLM stand-in, which holds its first answer until the test has killed the worker.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

import pytest
from harness import Stack, investigate_command, slack_surface, until
from standin_openai import Call, Reply, StandinOpenAI
from standin_slack import SlackStandin

from core.models import Investigation, Status
from core.store import Store

CHANNEL = "C0INCIDENT"
COMMAND = investigate_command("1111.2222.kill")


def hold_first_answers(llm: StandinOpenAI) -> threading.Event:
    """Every LLM call waits until the returned event is set, then fails: the crew degrades to the offline report."""
    released = threading.Event()

    def script(_call: Call) -> Reply:
        released.wait(timeout=60)
        return Reply.error(500)

    llm.script = script
    return released


def llm_env(llm: StandinOpenAI, retries: int) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "sk-test-faults-0000000000000000",
        "OPENAI_BASE_URL": llm.base_url,
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT_S": "90",
        "JOB_RETRIES": str(retries),
    }


def only_investigation(db: Store) -> Investigation:
    rows, _ = db.list_investigations()
    assert len(rows) == 1, [r.id for r in rows]
    return rows[0]


def finished(db: Store) -> Investigation | None:
    rows, _ = db.list_investigations()
    return rows[0] if rows and Status(rows[0].status).finished else None


def report_posts(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage") if any(b.get("type") == "header" for b in c.params.get("blocks") or [])]


def kill_work_horse_mid_llm_call(stack: Stack, llm: StandinOpenAI, slack: SlackStandin, retries: int) -> None:
    released = hold_first_answers(llm)
    # The retry policy travels with the job, so the process that enqueues it decides.
    web = stack.web(JOB_RETRIES=str(retries))
    worker = stack.worker(**llm_env(llm, retries))
    assert slack_surface(web).command(COMMAND).status_code == 200
    until(lambda: llm.calls, timeout=90, what="the worker reaching the LLM")
    port = urlparse(llm.base_url).port
    assert port is not None
    horse = until(lambda: worker.child_talking_to(port), timeout=10, what="the work horse's connection to the LLM")
    horse.kill()
    horse.wait(timeout=10)
    released.set()
    assert worker.alive(), "only the work horse was killed; the worker itself lives on"


def test_worker_killed_mid_run_is_rerun_and_reports_once(stack: Stack, llm: StandinOpenAI, slack: SlackStandin, db: Store) -> None:
    kill_work_horse_mid_llm_call(stack, llm, slack, retries=1)

    final = until(lambda: finished(db), timeout=90, what="the investigation finishing after the retry")

    assert final.status == Status.degraded.value, final.error
    assert final.attempts == 2
    assert final.report is not None and any(d["component"] == "llm" for d in final.report["degraded"])
    roots = [c for c in slack.of("chat.postMessage", channel=CHANNEL) if "thread_ts" not in c.params]
    assert len(roots) == 1
    reports = until(lambda: report_posts(slack), timeout=20, what="the report in the thread")
    assert [r.params["thread_ts"] for r in reports] == [final.slack_thread_ts]
    assert not [c for c in slack.of("chat.postMessage") if "Investigation failed" in c.params.get("text", "")]


def test_worker_killed_with_no_retry_left_ends_failed_with_the_reason_in_the_thread(
    stack: Stack, llm: StandinOpenAI, slack: SlackStandin, db: Store
) -> None:
    kill_work_horse_mid_llm_call(stack, llm, slack, retries=0)

    final = until(lambda: finished(db), timeout=30, what="the sweeper ending the investigation")

    assert final.status == Status.failed.value
    assert final.error and "worker running it stopped" in final.error

    def failure_posts() -> list[Any]:
        return [c for c in slack.of("chat.postMessage", thread_ts=final.slack_thread_ts) if "worker running it stopped" in c.params["text"]]

    told = until(failure_posts, timeout=20, what="the failure reason in the thread")
    assert len(told) == 1
    assert [e.stage for e in db.progress(final.id)][-1] == "failed"
    assert not report_posts(slack)


@pytest.mark.slow
def test_worker_process_group_killed_mid_run_is_picked_up_by_another_worker(
    stack: Stack, llm: StandinOpenAI, slack: SlackStandin, db: Store
) -> None:
    released = hold_first_answers(llm)
    web = stack.web()
    doomed = stack.worker(**llm_env(llm, 1))
    assert slack_surface(web).command(COMMAND).status_code == 200
    until(lambda: llm.calls, timeout=90, what="the worker reaching the LLM")
    doomed.kill_group()
    released.set()
    # RQ only calls a job abandoned once its worker's heartbeat has lapsed (about 61 s); the survivor's maintenance finds it then.
    stack.worker(**llm_env(llm, 1))

    final = until(lambda: finished(db), timeout=150, every=0.5, what="another worker finishing the abandoned investigation")

    assert final.status == Status.degraded.value, final.error
    assert final.attempts == 2
    assert len(until(lambda: report_posts(slack), timeout=20, what="the report")) == 1
