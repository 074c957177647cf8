"""A worker SIGKILLed in the middle of a long run: while it reads a 2,000,000-line bundle with its parallel log readers,
and while it posts the report. Whatever was killed, the investigation ends exactly one way the thread shows (a report,
or the failure with its reason: never both, never neither), and no log reader outlives the process that started it.

The bundle is the example incident with its background multiplied as `bench.scale` does, built once per module.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
from harness import EXAMPLE, Proc, Stack, checkout_service, finished, gone, investigate_command, slack_surface, told_once, until
from redis import Redis
from rq.job import Job
from standin_slack import SlackStandin

from bench.scale import multiply
from core.models import Status
from core.store import Store

pytestmark = pytest.mark.slow

COMMAND = investigate_command("1111.2222.longrun")
READER = "agents.evidence.parallel import serve"
LINES = 2_000_000


@pytest.fixture(scope="module")
def big_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("big") / "checkout"
    lines = multiply(EXAMPLE, bundle, LINES)
    assert lines > 0.95 * LINES
    return bundle / "logs"


@pytest.fixture
def big_stack(stack: Stack, tmp_path: Path, example_repo: Path, big_logs: Path) -> Stack:
    """The stack with the checkout service reading the big bundle's logs."""
    path = tmp_path / "services-big.yaml"
    path.write_text("defaults: {lookback: 2h, after: 15m}\nservices:\n" + checkout_service(example_repo, logs=big_logs), encoding="utf-8")
    stack.env["SERVICES_FILE"] = str(path)
    return stack


def readers_reading(worker: Proc) -> list[psutil.Process]:
    readers = worker.descendants_running(READER)
    # Both readers started: the horse is inside the parallel read, not still planning it.
    return readers if len(readers) >= 2 else []


def start_reading(stack: Stack, retries: int) -> tuple[Proc, list[psutil.Process]]:
    web = stack.web(JOB_RETRIES=str(retries))
    worker = stack.worker(JOB_RETRIES=str(retries))
    assert slack_surface(web).command(COMMAND).status_code == 200
    readers = until(lambda: readers_reading(worker), timeout=120, every=0.05, what="the work horse reading logs in parallel")
    return worker, readers


def assert_readers_end_with_their_parent(readers: list[psutil.Process]) -> None:
    until(lambda: all(gone(r) for r in readers), timeout=3, what="every log reader exiting after its parent was killed")


def test_worker_and_horse_killed_mid_read_leave_no_reader_and_the_next_worker_reruns_once(
    big_stack: Stack, slack: SlackStandin, db: Store
) -> None:
    worker, readers = start_reading(big_stack, retries=1)
    horse = readers[0].parent()
    assert horse is not None and horse.pid != worker.pid

    # The worker's process group (the RQ worker and its scheduler), then the work horse, which RQ puts in a session
    # of its own; the readers in the horse's group are left to notice on their own, as after an OOM kill of the horse.
    os.killpg(worker.pid, signal.SIGKILL)
    horse.kill()
    worker.popen.wait(timeout=10)
    assert_readers_end_with_their_parent(readers)

    # RQ gives up on the job once its worker's heartbeat has lapsed; the next worker's maintenance finds it then.
    big_stack.worker(JOB_RETRIES="1")
    final = until(lambda: finished(db), timeout=240, every=0.5, what="the next worker ending the investigation")

    assert final.status in (Status.done.value, Status.degraded.value), final.error
    assert final.attempts == 2
    told_once(slack, final)


def test_horse_killed_mid_read_with_no_retry_left_ends_failed_with_the_reason_in_the_thread(
    big_stack: Stack, slack: SlackStandin, db: Store
) -> None:
    worker, readers = start_reading(big_stack, retries=0)
    horse = readers[0].parent()
    assert horse is not None

    horse.kill()
    assert_readers_end_with_their_parent(readers)
    final = until(lambda: finished(db), timeout=60, every=0.5, what="the investigation ending")

    assert final.status == Status.failed.value
    assert final.error and "worker running it stopped" in final.error
    told_once(slack, final)
    assert worker.alive(), "only the work horse was killed"


def hold_report_post(slack: SlackStandin) -> tuple[threading.Event, threading.Event]:
    """(arrived, release): the report's chat.postMessage waits at Slack until `release` is set."""
    arrived, release = threading.Event(), threading.Event()

    def hold(method: str, params: dict[str, Any]) -> None:
        if method == "chat.postMessage" and any(b.get("type") == "header" for b in params.get("blocks") or []):
            arrived.set()
            release.wait(timeout=60)

    slack.on_call = hold
    return arrived, release


@pytest.mark.parametrize("retries", [1, 0], ids=["retry-left", "no-retry-left"])
def test_horse_killed_while_posting_the_report_never_posts_it_twice(stack: Stack, slack: SlackStandin, db: Store, retries: int) -> None:
    arrived, release = hold_report_post(slack)
    web = stack.web(JOB_RETRIES=str(retries))
    worker = stack.worker(JOB_RETRIES=str(retries))
    assert slack_surface(web).command(COMMAND).status_code == 200
    until(arrived.is_set, timeout=90, what="the report post reaching Slack")
    port = urlparse(slack.api_url).port
    assert port is not None
    horse = until(lambda: worker.child_talking_to(port), timeout=10, what="the work horse waiting for Slack's answer")

    horse.kill()
    horse.wait(timeout=10)
    # Slack got the message even though nobody heard its answer.
    release.set()

    final = until(lambda: finished(db), timeout=30, what="the stored outcome")
    assert final.status in (Status.done.value, Status.degraded.value), final.error
    job = Job.fetch(final.id, connection=Redis.from_url(stack.env["REDIS_URL"]))
    # The killed attempt is failed; a retry (RETRY_INTERVALS[0] = 10 s later) finds the report stored and stops.
    until(lambda: job.get_status(refresh=True) in ("failed", "finished"), timeout=60, what="RQ settling the job")
    if retries:
        until(lambda: "investigation_already_finished" in worker.text(), timeout=60, what="the retry finding the stored report")
    told_once(slack, final)
