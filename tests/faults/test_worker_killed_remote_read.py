"""A worker SIGKILLed while it reads logs from a remote store: the checkout service's logs are in the Loki stand-in,
behind a front that holds every page for a while, so the read takes seconds and the kill lands with a request in
flight. The worker's whole process group goes (worker, scheduler, work horse), as on a lost node: no process of it
lives on to finish the read, and the investigation ends exactly one way the thread shows (a report, or the failure
with its reason: never both, never neither) once a new worker finds the job abandoned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest
from harness import (
    EXAMPLE,
    Proc,
    Stack,
    checkout_service,
    finished,
    gone,
    investigate_command,
    report_posts,
    slack_surface,
    told_once,
    until,
)
from hostile_front import HostileFront
from standin_loki import LokiStandin
from standin_slack import SlackStandin

from core.models import Investigation, Status
from core.store import Store

pytestmark = pytest.mark.slow

CHANNEL = "C0INCIDENT"
COMMAND = investigate_command("1111.2222.remote")
# Each page waits this long at the front; at PAGE entries a page the ~2,000 entries are a request or two per slice
# (the store reads 8 slices one after another), so a read takes about ten seconds.
SLOW_S = 1.0
PAGE = 500
# RQ calls a started job abandoned only once its execution heartbeat lapses: each heartbeat (every WORKER_HEARTBEAT_S,
# 1 s here) holds for 60 s more, so about 61 s after the kill. A retry then waits RETRY_INTERVALS[0] = 10 s and reads every page again.
ABANDONED_WITHIN_S = 150
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def checkout_entries() -> list[tuple[int, str]]:
    """The example's checkout log as Loki would hold it: one entry per record, a traceback inside its record."""
    entries: list[tuple[int, str]] = []
    for line in (EXAMPLE / "logs" / "checkout.log").read_text(encoding="utf-8").splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            ns, first = entries[-1]
            entries[-1] = (ns, f"{first}\n{line}")
            continue
        moment = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        # Records of one millisecond get distinct nanoseconds, in file order, as Loki's ingester would keep them.
        ns = int(moment.timestamp()) * 10**9 + int(stamp[2]) * 10**6 + len(entries) % 10**6
        entries.append((ns, line))
    return entries


@pytest.fixture
def loki() -> Iterator[LokiStandin]:
    standin = LokiStandin()
    standin.push({"app": "checkout", "namespace": "shop"}, checkout_entries())
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def front(loki: LokiStandin) -> Iterator[HostileFront]:
    slow = HostileFront(loki.url, slow_s=SLOW_S).start()
    yield slow
    slow.stop()


@pytest.fixture
def remote_stack(stack: Stack, tmp_path: Path, example_repo: Path, front: HostileFront) -> Stack:
    """The stack with the checkout service's logs read from Loki through the slow front."""
    loki = f'{{kind: loki, url: "{front.url}", query: \'{{app="checkout"}}\', page_size: {PAGE}}}'
    path = tmp_path / "services-loki.yaml"
    path.write_text(
        "defaults: {lookback: 2h, after: 15m}\nservices:\n" + checkout_service(example_repo, log_sources=loki), encoding="utf-8"
    )
    stack.env["SERVICES_FILE"] = str(path)
    return stack


def kill_group_mid_request(stack: Stack, front: HostileFront, retries: int) -> int:
    """Start the run, SIGKILL the worker's process group while a Loki page is in flight; the front's request count then."""
    web = stack.web(JOB_RETRIES=str(retries))
    # The worker that runs the start job enqueues the investigation, so its setting is the retry policy.
    worker = stack.worker(JOB_RETRIES=str(retries))
    assert slack_surface(web).command(COMMAND).status_code == 200
    until(lambda: front.in_flight, timeout=90, every=0.02, what="a Loki page request in flight")
    port = urlparse(front.url).port
    assert port is not None
    horse = until(lambda: worker.child_talking_to(port), timeout=5, every=0.02, what="the work horse waiting on the front")
    assert front.in_flight, "the page was answered before the kill; the kill must land mid-request"
    doomed = tree(worker)
    assert horse in doomed and len(doomed) >= 2

    worker.kill_group()
    at_kill = front.requests

    # No reader thread, child or scheduler of the killed worker lives on to finish the read or post anything.
    until(lambda: all(gone(p) for p in doomed), timeout=5, what="every process of the killed worker ending")
    # The front answers the held request into a closed connection and hears nothing more from the dead worker.
    until(lambda: front.in_flight == 0, timeout=SLOW_S + 5, what="the held page answered")
    assert front.requests == at_kill
    return at_kill


def tree(worker: Proc) -> list[psutil.Process]:
    root = psutil.Process(worker.pid)
    return [root, *root.children(recursive=True)]


def thread_roots(slack: SlackStandin) -> list[Any]:
    return [c for c in slack.of("chat.postMessage", channel=CHANNEL) if "thread_ts" not in c.params]


def ended(db: Store) -> Investigation:
    return until(lambda: finished(db), timeout=ABANDONED_WITHIN_S, every=0.5, what="a new worker ending the abandoned investigation")


def test_worker_group_killed_mid_loki_request_is_rerun_once_by_the_next_worker(
    remote_stack: Stack, front: HostileFront, slack: SlackStandin, db: Store
) -> None:
    at_kill = kill_group_mid_request(remote_stack, front, retries=1)
    remote_stack.worker(JOB_RETRIES="1")

    final = ended(db)

    assert final.status in (Status.done.value, Status.degraded.value), final.error
    assert final.attempts == 2
    assert front.requests > at_kill, "the rerun read Loki again"
    assert final.report is not None
    (read,) = final.report["log_reads"]
    # The killed read kept nothing that passes for a whole read: the rerun read the window to its end.
    assert read["truncated"] is None and read["failed"] is None, read
    assert read["events"] == len(checkout_entries()) and read["api_calls"] == front.requests - at_kill, read
    assert not [d for d in final.report["degraded"] if d["component"].startswith("logs:")], final.report["degraded"]
    told_once(slack, final)
    assert len(thread_roots(slack)) == 1


def test_worker_group_killed_mid_loki_request_with_no_retry_left_ends_failed_with_the_reason_in_the_thread(
    remote_stack: Stack, front: HostileFront, slack: SlackStandin, db: Store
) -> None:
    at_kill = kill_group_mid_request(remote_stack, front, retries=0)
    remote_stack.worker(JOB_RETRIES="0")

    final = ended(db)

    assert final.status == Status.failed.value
    assert final.error and "worker running it stopped" in final.error
    assert final.attempts == 1 and final.report is None
    told_once(slack, final)
    assert len(thread_roots(slack)) == 1
    assert front.requests == at_kill, "nothing ran the investigation again"
    assert report_posts(slack) == []
