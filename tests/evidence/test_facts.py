"""Facts before statistics: what Kubernetes states weighs with the log signatures, dates untimed output, and names the origin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.evidence.classify import classify
from agents.evidence.engine import KEY_MIN_SCORE, build_evidence
from agents.evidence.facts import workload
from agents.evidence.model import EvidenceInputs, MetricShiftEvidence
from agents.offline import write_report
from core.alert import Alert
from integrations.code.base import Commit, Deploy, FileChange
from integrations.infra.base import InfraFact
from integrations.logs.base import Frame, LogEvent
from integrations.registry import ServiceSources
from integrations.roles import CODE, LOGS

ALERT_AT = datetime(2026, 11, 3, 14, 20, tzinfo=UTC)
ONSET = ALERT_AT - timedelta(minutes=12)
START = ALERT_AT - timedelta(hours=2)
END = ALERT_AT + timedelta(minutes=15)
POD = "orders-6b8d9c7f5-q2w7x"

DESCRIBE = """Name:             orders-6b8d9c7f5-q2w7x
Namespace:        shop
Status:           Running
Containers:
  orders:
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       Error
    Restart Count:  5
QoS Class:                   Burstable
Tolerations:                 node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
                             node.kubernetes.io/unreachable:NoExecute op=Exists for 300s
Events:                      <none>"""


class ListSource:
    name = "list"

    def __init__(self, events: list[LogEvent]) -> None:
        self._events = events

    def events(self, start: datetime, end: datetime) -> Iterator[LogEvent]:
        yield from (e for e in self._events if e.ts is None or start <= e.ts <= end)


class FakeCode:
    name = "fake"

    def __init__(self, commits: list[Commit], diffs: dict[str, str]) -> None:
        self._commits = commits
        self._diffs = diffs

    def commits(self, start: datetime, end: datetime, *, limit: int = 2000) -> list[Commit]:
        return [c for c in self._commits if start <= c.committed_at <= end][:limit]

    def diff(self, sha: str, *, paths: list[str] | None = None, max_bytes: int = 200_000) -> str:
        return self._diffs.get(sha, "")

    def resolve(self, ref: str) -> str | None:
        return next((c.sha for c in self._commits if c.sha.startswith(ref)), None)

    def commits_between(self, old: str | None, new: str, *, limit: int = 500) -> list[str]:
        shas = [c.sha for c in sorted(self._commits, key=lambda c: c.committed_at, reverse=True)]
        out = shas[shas.index(new) :] if new in shas else []
        return out[: out.index(old)] if old in out else out[:limit]


def ev(at: datetime | None, message: str, level: str = "info", source: str = "orders.log", **kwargs: object) -> LogEvent:
    return LogEvent(ts=at, level=level, message=message, raw=message, source=source, **kwargs)  # type: ignore[arg-type]


def background() -> list[LogEvent]:
    return [ev(START + timedelta(seconds=20 * i), "request completed", status=200, method="GET") for i in range(int(7200 / 20) + 30)]


def burst(message: str, since: datetime, level: str = "error", n: int = 40) -> list[LogEvent]:
    return [ev(since + timedelta(seconds=15 * i), message, level) for i in range(n)]


def untimed(lines: list[str], source: str = f"{POD}.previous.log") -> list[LogEvent]:
    return [ev(None, line, "info", source, pod=POD) for line in lines]


def fact(kind: str, subject: str, detail: str, at: datetime | None = None, **more: object) -> InfraFact:
    return InfraFact(kind=kind, subject=subject, detail=detail, at=at, source="kubectl_dump:test", **more)  # type: ignore[arg-type]


def inputs(
    events: list[LogEvent],
    facts: list[InfraFact] | None = None,
    commits: list[Commit] | None = None,
    diffs: dict[str, str] | None = None,
    deploys: list[Deploy] | None = None,
    service: str = "orders",
) -> EvidenceInputs:
    code = FakeCode(commits or [], diffs or {})
    return EvidenceInputs(
        alert=Alert(title="orders failing", service=service, created_at=ALERT_AT),
        service=service,
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [ListSource(events)], CODE: [code] if commits else []}),
        gathered={"code": code.commits(START - timedelta(days=1), END), "deploys": deploys or [], "infra": facts or []},
    )


def test_describe_output_pasted_into_the_logs_never_makes_the_key_error() -> None:
    events = background() + untimed(DESCRIBE.splitlines(), "describe.txt") + burst("payment declined: card processor returned 502", ONSET)

    evidence = build_evidence(inputs(events))
    report = write_report(evidence, evidence_alert())

    assert "Tolerations" not in evidence.signatures[0].template
    assert all(s.score < KEY_MIN_SCORE for s in evidence.signatures if "Tolerations" in s.template)
    assert "Tolerations" not in report.root_cause.summary


def evidence_alert() -> Alert:
    return Alert(title="orders failing", service="orders", created_at=ALERT_AT)


def test_an_oom_kill_outweighs_the_timeouts_it_causes_and_is_shown_in_the_report() -> None:
    events = background() + burst("call to pricing.shop.svc:8080 timed out after 2000ms", ONSET)
    oom = fact(
        "oom_killed", f"{POD}/orders", "last terminated: OOMKilled (exit code 137)", ONSET, reason="OOMKilled", exit_code=137, count=4
    )

    evidence = build_evidence(inputs(events, [oom]))
    report = write_report(evidence, evidence_alert())

    assert evidence.finding.category == "resource_exhaustion"
    assert evidence.finding.component == "orders"
    assert any(r.startswith("fact:") and "OOMKilled" in r for r in evidence.finding.rationale)
    assert report.facts[0].reason == "OOMKilled" and report.facts[0].count == 4
    assert "Kubernetes reports" in report.root_cause.summary


def test_untimed_container_output_takes_its_onset_from_the_platform() -> None:
    crashed = ONSET + timedelta(seconds=40)
    events = untimed(
        ["Starting gunicorn 22.0.0", "cart.settings.ConfigError: environment variable REDIS_URL is not set", "Worker failed to boot."]
    )
    facts = [
        fact("crash_loop", POD, "Back-off restarting failed container orders", crashed, last_at=ALERT_AT, reason="BackOff", count=30),
        fact("container_error", f"{POD}/orders", "last terminated: Error (exit code 3)", ALERT_AT, reason="Error", exit_code=3, count=8),
    ]

    evidence = build_evidence(inputs(events, facts))
    report = write_report(evidence, evidence_alert())

    assert evidence.onset == crashed
    assert evidence.onset_from == f"facts: BackOff on {POD}"
    assert evidence.finding.category == "config_change"
    assert evidence.signatures[0].template == "cart.settings.ConfigError: environment variable REDIS_URL is not set"
    assert evidence.signatures[0].trend == "untimed"
    assert "onset is taken from the platform" in report.root_cause.summary


def test_without_any_time_the_report_says_the_onset_is_unknown() -> None:
    events = untimed(["booting", "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"])

    evidence = build_evidence(inputs(events, [fact("crash_loop", POD, "waiting: CrashLoopBackOff", reason="CrashLoopBackOff")]))
    report = write_report(evidence, evidence_alert())

    assert evidence.onset is None and report.window is not None and report.window.onset is None
    assert evidence.finding.category == "resource_exhaustion"
    assert "The onset is unknown" in report.root_cause.summary
    assert any(d.component == "onset" and d.reason.startswith("unknown") for d in evidence.degraded)


def test_timeouts_that_begin_after_the_pool_ran_out_are_its_effect() -> None:
    events = (
        background()
        + burst("HikariPool-1 - Connection is not available, request timed out after 30000ms", ONSET, "warning")
        + burst("payments-api call failed: java.net.SocketTimeoutException: Read timed out", ONSET + timedelta(minutes=3), n=80)
    )

    evidence = build_evidence(inputs(events))

    assert evidence.finding.category == "resource_exhaustion"
    assert evidence.signatures[0].template.startswith("HikariPool-1 - Connection is not available")


def test_a_dependency_failing_before_the_pool_runs_out_stays_the_dependency() -> None:
    events = (
        background()
        + burst("could not connect to orders-db.shop.svc:5432: connection refused", ONSET, n=80)
        + burst("HikariPool-1 - Connection is not available, request timed out after 30000ms", ONSET + timedelta(minutes=3), "warning")
    )

    evidence = build_evidence(inputs(events))

    assert evidence.finding.category == "dependency_failure"
    assert evidence.finding.component == "orders-db.shop.svc"


def test_a_config_commit_deployed_just_before_dependency_timeouts_is_the_config_change() -> None:
    change = Commit(
        sha="c0ffee1234567890",
        author="jonas",
        committed_at=ONSET - timedelta(minutes=40),
        message="config: fail fast on slow pricing calls",
        files=[FileChange("config/application.yaml", 1, 1)],
    )
    diff = (
        "diff --git a/config/application.yaml b/config/application.yaml\n--- a/config/application.yaml\n+++ b/config/application.yaml\n"
        "@@ -3,3 +3,3 @@ clients:\n   pricing:\n-    timeout_ms: 1500\n+    timeout_ms: 150\n"
    )
    events = background() + burst(
        "pricing call failed: GET http://pricing.shop.svc:8080/v1/prices: read timed out after 150 ms", ONSET, n=90
    )
    deploys = [Deploy(at=ONSET - timedelta(minutes=8), service="orders", version=change.sha, actor="argocd")]

    evidence = build_evidence(inputs(events, commits=[change], diffs={change.sha: diff}, deploys=deploys))

    assert evidence.finding.category == "config_change"
    assert evidence.finding.component == "orders"
    assert evidence.suspects[0].sha == change.sha and evidence.suspects[0].score >= 0.5


def test_an_expired_credential_names_the_upstream_that_rejects_it() -> None:
    events = (
        background()
        + burst("send to api.postmark.example.com failed: HTTP 401 Unauthorized: The API token has expired", ONSET)
        + burst("requeue message after provider rejected it", ONSET, "warning")
    )

    evidence = build_evidence(inputs(events, service="mailer"))

    assert evidence.finding.category == "expired_credential"
    assert evidence.finding.component == "api.postmark.example.com"


def test_a_crash_looping_cluster_dns_is_an_infrastructure_failure_named_after_it() -> None:
    events = background() + burst(
        "dial tcp: lookup orders-db.data.svc.cluster.local on 10.96.0.10:53: read udp 10.0.18.22:41235->10.96.0.10:53: i/o timeout", ONSET
    )
    facts = [
        fact("oom_killed", "coredns-5d78c9869d-4xk8p/coredns", "last terminated: OOMKilled (exit code 137)", ONSET, reason="OOMKilled"),
        fact("crash_loop", "coredns-5d78c9869d-4xk8p", "Back-off restarting failed container coredns", ONSET, reason="BackOff"),
    ]

    evidence = build_evidence(inputs(events, facts))

    assert evidence.finding.category == "infrastructure"
    assert evidence.finding.component == "coredns"


def test_a_node_not_ready_names_the_node_even_when_the_caller_sees_connect_timeouts() -> None:
    node = "node/ip-10-0-3-17.eu-west-1.compute.internal"
    events = background() + burst("upstream timed out (110: Connection timed out) while connecting to upstream", ONSET)
    facts = [
        fact(
            "node_condition",
            node,
            "Ready=Unknown: Kubelet stopped posting node status.",
            ONSET - timedelta(seconds=20),
            reason="NodeStatusUnknown",
        )
    ]

    evidence = build_evidence(inputs(events, facts))

    assert evidence.finding.category == "infrastructure"
    assert evidence.finding.component == "ip-10-0-3-17.eu-west-1.compute.internal"


def test_facts_about_other_workloads_are_shown_last_and_do_not_vote() -> None:
    events = background() + burst("payment declined: card processor returned 502 Bad Gateway", ONSET)
    facts = [
        fact("oom_killed", "search-api-86c5d4f7b9-2ndxq/search-api", "last terminated: OOMKilled", ONSET, reason="OOMKilled"),
        fact("probe_failed", f"{POD}", "Readiness probe failed: HTTP probe failed with statuscode: 503", ONSET, reason="Unhealthy"),
    ]

    evidence = build_evidence(inputs(events, facts))

    assert evidence.finding.category == "dependency_failure"
    assert [(f.subject, f.about_service) for f in evidence.facts] == [(POD, True), ("search-api-86c5d4f7b9-2ndxq/search-api", False)]


def test_a_missing_module_blames_the_manifest_that_dropped_it_not_the_commit_that_touched_the_import() -> None:
    edit = Commit(
        sha="aaaa111122223333",
        author="ana",
        committed_at=ONSET - timedelta(hours=2),
        message="tasks: keep EXIF orientation",
        files=[FileChange("thumbnailer/tasks.py", 2, 1)],
    )
    deps = Commit(
        sha="bbbb111122223333",
        author="kai",
        committed_at=ONSET - timedelta(minutes=40),
        message="deps: split runtime and test requirements",
        files=[FileChange("requirements.txt", 0, 1), FileChange("requirements-dev.txt", 1, 0)],
    )
    diffs = {
        edit.sha: "--- a/thumbnailer/tasks.py\n+++ b/thumbnailer/tasks.py\n@@ -1,1 +1,1 @@\n"
        "-from PIL import Image\n+from PIL import Image, ImageOps\n",
        deps.sha: "--- a/requirements.txt\n+++ b/requirements.txt\n@@ -1,3 +1,2 @@\n celery==5.4.0\n-Pillow==10.4.0\n boto3==1.35.0\n",
    }
    crashes = [
        LogEvent(
            ts=ONSET + timedelta(seconds=20 * i),
            level="error",
            message="ModuleNotFoundError: No module named 'PIL'",
            raw='Traceback (most recent call last):\n  File "/srv/app/thumbnailer/tasks.py", line 1, in <module>\n'
            "ModuleNotFoundError: No module named 'PIL'",
            source="worker.log",
            exception="ModuleNotFoundError: No module named 'PIL'",
            frames=[Frame("thumbnailer/tasks.py", "<module>", 1)],
        )
        for i in range(30)
    ]
    deploys = [Deploy(at=ONSET - timedelta(minutes=1), service="orders", version=deps.sha, actor="argocd")]

    evidence = build_evidence(inputs(background() + crashes, commits=[edit, deps], diffs=diffs, deploys=deploys))

    assert evidence.finding.category == "bad_deploy"
    assert evidence.suspects[0].sha == deps.sha
    assert "cannot be loaded" in evidence.suspects[0].reason


def test_the_dependency_s_pods_oom_killed_make_it_the_origin_not_our_service_s_exhaustion() -> None:
    events = background() + burst("could not connect to postgres-main.db.svc:5432: connection refused", ONSET, n=80)
    facts = [fact("oom_killed", "postgres-main-0/postgres", "last terminated: OOMKilled (exit code 137)", ONSET, reason="OOMKilled")]

    evidence = build_evidence(inputs(events, facts))
    report = write_report(evidence, evidence_alert())

    assert evidence.finding.category == "dependency_failure"
    assert evidence.finding.component == "postgres-main.db.svc"
    assert "Kubernetes reports postgres-main-0/postgres: last terminated: OOMKilled" in report.root_cause.summary


@pytest.mark.parametrize(
    ("subject", "owner"),
    [
        ("checkout-7d9f8b6c5-x2k4p/checkout", "checkout"),
        ("billing-5f7c9d8b64-h2k9r", "billing"),
        ("replicaset/reports-worker-6c7b8d9f5", "reports-worker"),
        ("deployment/billing", "billing"),
        ("sessions-redis-0", "sessions-redis"),
        ("node/ip-10-0-3-17.eu-west-1.compute.internal", "ip-10-0-3-17.eu-west-1.compute.internal"),
        ("cart-sessions-redis", "cart-sessions-redis"),
    ],
)
def test_the_workload_a_pod_or_object_belongs_to(subject: str, owner: str) -> None:
    assert workload(subject) == owner


def test_an_expiry_date_in_the_errors_is_shown_as_a_fact_with_its_time() -> None:
    expired = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    events = background() + burst(
        'Post "https://bank-gateway.partner.example.net/v2/settlements": tls: failed to verify certificate: x509: certificate has '
        f"expired or is not yet valid: current time 2026-11-03T14:08:03Z is after {expired:%Y-%m-%dT%H:%M:%SZ}",
        ONSET,
    )

    evidence = build_evidence(inputs(events, service="ledger"))
    report = write_report(evidence, evidence_alert())

    assert evidence.finding.category == "expired_credential"
    assert evidence.finding.component == "bank-gateway.partner.example.net"
    stated = evidence.facts[0]
    assert (stated.kind, stated.subject, stated.at) == ("cert_expiry", "bank-gateway.partner.example.net", expired)
    assert "credential valid until 2026-11-03 14:00:00 UTC for bank-gateway.partner.example.net" in report.root_cause.summary


def test_memory_that_keeps_growing_points_at_an_exhaustion_before_anything_is_killed() -> None:
    growth = MetricShiftEvidence(metric="container_memory_working_set_bytes", change_at=ONSET, before=4.1e8, after=9.8e8, direction="up")
    flat = MetricShiftEvidence(metric="container_memory_working_set_bytes", change_at=ONSET, before=4.1e8, after=4.4e8, direction="up")

    grown = classify([], [], [growth], volume=1.0, service="quotes", own_names={"quotes"})
    steady = classify([], [], [flat], volume=1.0, service="quotes", own_names={"quotes"})

    assert (grown.finding.category, grown.finding.component) == ("resource_exhaustion", "quotes")
    assert "container_memory_working_set_bytes grew from 4.1e+08 to 9.8e+08" in grown.finding.rationale
    assert steady.finding.category == "unknown"


def test_in_output_without_timestamps_the_error_a_container_died_with_leads_a_repeated_earlier_one() -> None:
    lines = ["starting feeds 2.0.1"]
    lines += ["ERROR could not reach cache redis.feeds.svc:6379, continuing without cache"] * 6
    lines += ["FATAL invalid value for FEED_REFRESH_RATE: parsing 'ten': invalid syntax", "exiting"]
    events = [ev(None, line, "error" if line.startswith(("ERROR", "FATAL")) else "info", f"{POD}.previous.log", pod=POD) for line in lines]

    evidence = build_evidence(inputs(events))

    assert evidence.signatures[0].template.startswith("FATAL invalid value for FEED_REFRESH_RATE")
    assert evidence.finding.category == "config_change"


def test_facts_read_from_the_cluster_api_are_reasoned_over_like_pasted_ones() -> None:
    from kubernetes.client import (
        V1ContainerState,
        V1ContainerStateTerminated,
        V1ContainerStateWaiting,
        V1ContainerStatus,
        V1ObjectMeta,
        V1Pod,
        V1PodStatus,
    )

    from integrations.infra.kubernetes_states import pod_facts

    crashed = ONSET + timedelta(seconds=30)
    pod = V1Pod(
        metadata=V1ObjectMeta(name=POD, namespace="shop"),
        status=V1PodStatus(
            start_time=ONSET - timedelta(minutes=1),
            container_statuses=[
                V1ContainerStatus(
                    name="orders",
                    image="registry.acme.io/orders:2.0.0",
                    image_id="",
                    ready=False,
                    restart_count=6,
                    state=V1ContainerState(waiting=V1ContainerStateWaiting(reason="CrashLoopBackOff", message="back-off 2m40s")),
                    last_state=V1ContainerState(
                        terminated=V1ContainerStateTerminated(
                            exit_code=127, reason="Error", started_at=crashed - timedelta(seconds=1), finished_at=crashed
                        )
                    ),
                )
            ],
        ),
    )
    events = background() + untimed(["exec /app/orders-server: no such file or directory"])

    evidence = build_evidence(inputs(events, pod_facts(pod, ALERT_AT, "kubernetes")))

    assert evidence.finding.category == "bad_deploy"
    assert evidence.onset == crashed and evidence.onset_from.startswith("facts: ")
    assert any("cannot start its process" in r for r in evidence.finding.rationale)
