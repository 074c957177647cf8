"""The `kubernetes` kinds (infra, logs, deploys) through the official client against the loopback Kubernetes stand-in."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from standin_kubernetes import KubernetesStandin, LogLine, container_status, deployment, event, node, pod, replicaset

from agents.pipeline import gather
from contracts import (
    SECRET_DIR,
    Broken,
    DeployRecord,
    DeploySourceContract,
    EventRecord,
    InfraSourceContract,
    LogRecord,
    LogSourceContract,
    MakeDeploySource,
    MakeInfraSource,
    MakeLogSource,
    Options,
    build,
)
from core.alert import Alert
from core.catalog import SourceSpec
from integrations.errors import SourceError
from integrations.infra import kubernetes
from integrations.infra.kubernetes_client import Partial
from integrations.infra.kubernetes_logs import PRESENT
from integrations.registry import build_specs, check_source

LABELS = {"app": "checkout", "team": "shop"}
SELECTOR = "team=shop"
Standins = Callable[..., KubernetesStandin]


@pytest.fixture
def standins() -> Iterator[Standins]:
    started: list[KubernetesStandin] = []

    def start(**kwargs: Any) -> KubernetesStandin:
        server = KubernetesStandin(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


_configs = itertools.count()


def options_of(server: KubernetesStandin, tmp_path: Path, **extra: Any) -> Options:
    """Options of a source reading `server` through a kubeconfig file in the catalog's folder."""
    name = f"kube-{next(_configs)}/config"
    server.kubeconfig(tmp_path / name)
    return {"namespace": server.namespace, "selector": SELECTOR, "kubeconfig": name, **extra}


def broken(request: pytest.FixtureRequest, standins: Standins, tmp_path: Path) -> Broken:
    if request.param == "missing kubeconfig":
        path = tmp_path / SECRET_DIR / "kubeconfig"
        return Broken({"namespace": "shop", "selector": SELECTOR, "kubeconfig": str(path)}, str(path))
    if request.param == "unreachable server":
        server = standins()
        url = f"{server.url}/{SECRET_DIR}"
        server.stop()
        path = server.kubeconfig(tmp_path / "gone" / "config", server=url)
        return Broken({"namespace": "shop", "selector": SELECTOR, "kubeconfig": str(path)}, url)
    server = standins(prefix=f"/{SECRET_DIR}", forbidden={"pods", "pods/log", "events", "replicasets"})
    path = server.kubeconfig(tmp_path / "forbidden" / "config")
    return Broken({"namespace": "shop", "selector": SELECTOR, "kubeconfig": str(path)}, server.url)


BROKEN = ["missing kubeconfig", "unreachable server", "forbidden by RBAC"]


class TestKubernetesInfraContract(InfraSourceContract):
    kind = kubernetes.KIND

    @pytest.fixture
    def make_source(self, standins: Standins, tmp_path: Path) -> MakeInfraSource:
        def make(records: Sequence[EventRecord]) -> Options:
            server = standins()
            created = min(r.at for r in records) - timedelta(hours=1)
            for name in dict.fromkeys(r.pod for r in records):
                server.pods.append(pod(name, labels=LABELS, created=created, owner="checkout-7d9f"))
            server.nodes["node-a"] = node("node-a", [("Ready", "True", "KubeletReady", "kubelet is posting ready status", created)])
            for r in records:
                server.events.append(event(r.reason, r.message, pod_name=r.pod, first=r.at, last=r.last_at, count=r.count))
            return options_of(server, tmp_path)

        return make

    @pytest.fixture(params=BROKEN)
    def broken_source(self, request: pytest.FixtureRequest, standins: Standins, tmp_path: Path) -> Broken:
        return broken(request, standins, tmp_path)


def json_line(record: LogRecord) -> str:
    entry = {"level": record.level, "msg": record.message}
    if record.ts is not None:
        entry = {"time": record.ts.isoformat(), **entry}
    return json.dumps(entry)


class TestKubernetesLogsContract(LogSourceContract):
    kind = kubernetes.LOGS_KIND

    @pytest.fixture
    def make_source(self, standins: Standins, tmp_path: Path) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = standins()
            server.pods.append(pod("checkout-7d9f-x1", labels=LABELS, created=datetime(2026, 1, 1, tzinfo=UTC), owner="checkout-7d9f"))
            # The runtime stamps a line when it is written; a record without a time is served without one.
            server.add_log("checkout-7d9f-x1", "app", [LogLine(r.ts, json_line(r)) for r in records], endless=endless)
            return options_of(server, tmp_path)

        return make

    @pytest.fixture(params=BROKEN)
    def broken_source(self, request: pytest.FixtureRequest, standins: Standins, tmp_path: Path) -> Broken:
        return broken(request, standins, tmp_path)


class TestKubernetesDeploysContract(DeploySourceContract):
    kind = kubernetes.DEPLOYS_KIND

    @pytest.fixture
    def make_source(self, standins: Standins, tmp_path: Path) -> MakeDeploySource:
        def make(records: Sequence[DeployRecord]) -> Options:
            server = standins()
            for revision, r in enumerate(sorted(records, key=lambda r: r.at), start=1):
                image = f"registry.example.com/shop/{r.service}:{r.version}"
                labels = {"app": r.service, "team": "shop"}
                annotations = {"kubernetes.io/change-cause": r.actor}
                server.replicasets.append(
                    replicaset(r.service, revision=revision, images=[image], created=r.at, labels=labels, annotations=annotations)
                )
            for service in dict.fromkeys(r.service for r in records):
                server.deployments.append(
                    deployment(service, labels={"app": service, "team": "shop"}, revision=len(records), created=T0 - timedelta(days=30))
                )
            # Another team's rollouts share the namespace: the selector leaves them out.
            server.replicasets.append(
                replicaset("search", revision=1, images=["search:v9"], created=T0 - timedelta(minutes=10), labels={"app": "search"})
            )
            return options_of(server, tmp_path)

        return make

    @pytest.fixture(params=BROKEN)
    def broken_source(self, request: pytest.FixtureRequest, standins: Standins, tmp_path: Path) -> Broken:
        return broken(request, standins, tmp_path)


# --- What the platform states, read as facts ---------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LAST_HOUR = (NOW - timedelta(hours=1), NOW)
OWNER = "checkout-7d9f"


def troubled_cluster(server: KubernetesStandin) -> None:
    """Pods of one service in every trouble the infra source reads, and a neighbour whose troubles are not ours."""
    created = NOW - timedelta(hours=2)
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    server.pods += [
        pod(
            "checkout-7d9f-oom",
            labels=LABELS,
            created=created,
            owner=OWNER,
            containers=[{"name": "app", "image": "registry.example.com/shop/checkout:v2", "resources": resources}],
            statuses=[
                container_status(
                    "app",
                    "registry.example.com/shop/checkout:v2",
                    restarts=5,
                    running_since=NOW - timedelta(minutes=2),
                    last_terminated={
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "startedAt": NOW - timedelta(minutes=9),
                        "finishedAt": NOW - timedelta(minutes=3),
                    },
                )
            ],
        ),
        pod(
            "checkout-7d9f-crash",
            labels=LABELS,
            created=created,
            owner=OWNER,
            node="node-b",
            statuses=[
                container_status(
                    "app",
                    "registry.example.com/shop/checkout:v2",
                    restarts=7,
                    waiting=("CrashLoopBackOff", "back-off 5m0s restarting failed container=app pod=checkout-7d9f-crash_shop"),
                    last_terminated={
                        "reason": "StartError",
                        "exitCode": 128,
                        "finishedAt": NOW - timedelta(minutes=4),
                        "message": 'exec: "/app/server": stat /app/server: no such file or directory: unknown',
                    },
                )
            ],
        ),
        pod(
            "checkout-7d9f-config",
            labels=LABELS,
            created=NOW - timedelta(minutes=10),
            owner=OWNER,
            phase="Pending",
            statuses=[
                container_status(
                    "app", "registry.example.com/shop/checkout:v2", waiting=("CreateContainerConfigError", 'secret "checkout-db" not found')
                )
            ],
        ),
        pod(
            "checkout-7d9f-pending",
            labels=LABELS,
            created=NOW - timedelta(minutes=12),
            owner=OWNER,
            node=None,
            phase="Pending",
            statuses=[],
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                    "lastTransitionTime": (NOW - timedelta(minutes=12)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ],
        ),
        pod(
            "checkout-7d9f-evicted",
            labels=LABELS,
            created=created,
            owner=OWNER,
            phase="Failed",
            statuses=[],
            reason="Evicted",
            message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi.",
            conditions=[
                {"type": "Ready", "status": "False", "lastTransitionTime": (NOW - timedelta(minutes=7)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            ],
        ),
        pod(
            "checkout-7d9f-init",
            labels=LABELS,
            created=created,
            owner=OWNER,
            phase="Pending",
            statuses=[container_status("app", "registry.example.com/shop/checkout:v2", waiting=("PodInitializing", ""))],
            init_statuses=[
                container_status(
                    "migrate",
                    "registry.example.com/shop/migrate:v2",
                    restarts=3,
                    waiting=("CrashLoopBackOff", "back-off 40s restarting failed container=migrate"),
                    last_terminated={"reason": "Error", "exitCode": 2, "finishedAt": NOW - timedelta(minutes=2)},
                )
            ],
        ),
        pod("search-5c4b-1", labels={"app": "search"}, created=created, owner="search-5c4b"),
    ]
    server.nodes["node-a"] = node("node-a", [("Ready", "True", "KubeletReady", "kubelet is posting ready status", created)])
    server.nodes["node-b"] = node(
        "node-b",
        [
            ("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.", NOW - timedelta(minutes=6)),
            (
                "MemoryPressure",
                "True",
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                NOW - timedelta(minutes=15),
            ),
        ],
    )
    server.events += [
        event(
            "BackOff",
            "Back-off restarting failed container app in pod checkout-7d9f-crash_shop",
            pod_name="checkout-7d9f-crash",
            first=NOW - timedelta(minutes=25),
            last=NOW - timedelta(minutes=1),
            count=31,
            container="app",
        ),
        # A pod already replaced: its events stay an hour, and its name says whose it was.
        event(
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            pod_name="checkout-7d9f-gone",
            first=NOW - timedelta(minutes=40),
            last=NOW - timedelta(minutes=30),
            count=12,
        ),
        event(
            "Failed",
            'Failed to pull image "registry.example.com/shop/checkout:v3": not found',
            pod_name="checkout-7d9f-oom",
            first=NOW - timedelta(minutes=5),
        ),
        event("Failed", 'Error: configmap "checkout-flags" not found', pod_name="checkout-7d9f-config", first=NOW - timedelta(minutes=9)),
        event(
            "Failed",
            'Error: failed to create containerd task: exec: "/app/server": executable file not found in $PATH: unknown',
            pod_name="checkout-7d9f-crash",
            first=NOW - timedelta(minutes=4),
        ),
        event("Pulled", "Successfully pulled image", pod_name="checkout-7d9f-oom", first=NOW - timedelta(minutes=5), type_="Normal"),
        event(
            "Killing",
            "Container app failed liveness probe, will be restarted",
            pod_name="checkout-7d9f-oom",
            first=NOW - timedelta(minutes=3),
            type_="Normal",
        ),
        event("BackOff", "Back-off restarting failed container", pod_name="search-5c4b-1", first=NOW - timedelta(minutes=5)),
        event("FailedMount", "MountVolume.SetUp failed", pod_name="checkout-7d9f-oom", first=NOW - timedelta(days=2)),
    ]


def infra_source(server: KubernetesStandin, tmp_path: Path, **extra: Any) -> Any:
    return build(kubernetes.KIND, options_of(server, tmp_path, **extra), tmp_path)


def by_kind(facts: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for fact in facts:
        found.setdefault(fact.kind, []).append(fact)
    return found


def test_container_states_become_facts_with_reason_exit_code_restarts_and_time(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    troubled_cluster(server)

    facts = by_kind(infra_source(server, tmp_path).facts(*LAST_HOUR))

    [oom] = facts["oom_killed"]
    assert (oom.subject, oom.exit_code, oom.at, oom.attributes["restart_count"]) == (
        "checkout-7d9f-oom/app",
        137,
        NOW - timedelta(minutes=3),
        "5",
    )
    crash = next(f for f in facts["crash_loop"] if f.reason == "CrashLoopBackOff")
    assert crash.subject == "checkout-7d9f-crash/app" and crash.exit_code == 128
    # Looping since its last exit, and still at the read.
    assert crash.at == NOW - timedelta(minutes=4) and crash.last_at is not None and crash.last_at >= NOW
    [start_error] = [f for f in facts["container_error"] if f.reason == "StartError"]
    assert "no such file or directory" in start_error.detail and start_error.exit_code == 128
    [config] = [f for f in facts["config_error"] if f.reason == "CreateContainerConfigError"]
    assert config.reason == "CreateContainerConfigError" and 'secret "checkout-db" not found' in config.detail
    [unschedulable] = facts["unschedulable"]
    assert unschedulable.subject == "checkout-7d9f-pending" and "Insufficient memory" in unschedulable.detail
    assert {(f.subject, f.count) for f in facts["restarts"]} == {
        ("checkout-7d9f-oom/app", 5),
        ("checkout-7d9f-crash/app", 7),
        ("checkout-7d9f-init/migrate", 3),
    }
    [evicted] = facts["evicted"]
    assert (
        evicted.subject == "checkout-7d9f-evicted"
        and evicted.at == NOW - timedelta(minutes=7)
        and "low on resource: memory" in evicted.detail
    )
    init = next(f for f in facts["crash_loop"] if f.subject == "checkout-7d9f-init/migrate")
    assert init.detail.startswith("init container") and init.exit_code == 2


def test_warning_events_of_the_service_become_facts_with_first_last_and_count(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    troubled_cluster(server)

    facts = infra_source(server, tmp_path).facts(*LAST_HOUR)

    events = sorted((f.reason, f.kind, f.subject, f.count) for f in facts if f.attributes.get("type"))
    assert events == [
        ("BackOff", "crash_loop", "checkout-7d9f-crash/app", 31),
        ("Failed", "config_error", "checkout-7d9f-config", 1),
        ("Failed", "container_error", "checkout-7d9f-crash", 1),
        ("Failed", "image_pull", "checkout-7d9f-oom", 1),
        ("Unhealthy", "probe_failed", "checkout-7d9f-gone", 12),
    ]
    assert all("fieldSelector=type=Warning" in r for r in server.requests if "/events?" in r)
    backoff = next(f for f in facts if f.reason == "BackOff")
    assert (backoff.at, backoff.last_at) == (NOW - timedelta(minutes=25), NOW - timedelta(minutes=1))
    assert not any("search" in f.subject for f in facts)


def test_an_event_written_with_event_time_and_a_series_takes_its_times_and_count_from_them(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(pod("checkout-7d9f-1", labels=LABELS, created=NOW - timedelta(hours=2), owner=OWNER, node=None))
    first, last = NOW - timedelta(minutes=14, seconds=30), NOW - timedelta(minutes=2)
    message = "0/5 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 3 Insufficient cpu."
    server.events.append(event("FailedScheduling", message, pod_name="checkout-7d9f-1", first=first, last=last, count=17, series=True))

    [fact] = [f for f in infra_source(server, tmp_path).facts(*LAST_HOUR) if f.reason == "FailedScheduling"]

    assert (fact.kind, fact.at, fact.last_at, fact.count) == ("unschedulable", first, last, 17)
    assert fact.detail == f"FailedScheduling: {message}"


def test_node_conditions_and_resources_of_the_pods_are_facts(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    troubled_cluster(server)

    facts = by_kind(infra_source(server, tmp_path).facts(*LAST_HOUR))

    assert sorted((f.subject, f.reason, f.at) for f in facts["node_condition"]) == [
        ("node/node-b", "MemoryPressure", NOW - timedelta(minutes=15)),
        ("node/node-b", "NotReady", NOW - timedelta(minutes=6)),
    ]
    limits = next(f for f in facts["resource_limits"] if f.attributes)
    assert limits.subject == f"{OWNER}/app" and limits.at is None
    assert limits.attributes == {"requests.cpu": "250m", "requests.memory": "256Mi", "limits.memory": "512Mi"}
    assert "/api/v1/nodes/node-a?" in server.requests and "/api/v1/nodes/node-b?" in server.requests


def test_a_rollout_is_a_fact_saying_what_changed_from_the_revision_before_without_env_values(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(pod("checkout-7d9f-1", labels=LABELS, created=NOW - timedelta(minutes=20), owner=OWNER))

    def app(pool: str, memory: str, config: str) -> dict[str, Any]:
        return {
            "name": "app",
            "image": "registry.example.com/shop/checkout:v2",
            "env": [
                {"name": "DB_POOL_SIZE", "value": pool},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "password"}}},
            ],
            "envFrom": [{"configMapRef": {"name": config}}],
            "resources": {"limits": {"memory": memory}},
        }

    old = replicaset(
        "checkout", revision=6, images=[], created=NOW - timedelta(days=2), labels=LABELS, containers=[app("20", "512Mi", "cfg-v6")]
    )
    new = replicaset(
        "checkout", revision=7, images=[], created=NOW - timedelta(minutes=20), labels=LABELS, containers=[app("4", "256Mi", "cfg-v7")]
    )
    server.replicasets += [new, old]

    [rollout] = [f for f in infra_source(server, tmp_path).facts(*LAST_HOUR) if f.kind == "rollout"]

    assert (rollout.subject, rollout.at, rollout.attributes["revision"]) == ("deployment/checkout", NOW - timedelta(minutes=20), "7")
    changes = rollout.detail.split("): ", 1)[1].split("; ")
    assert changes == ["env app: DB_POOL_SIZE changed", "resources app: limits memory 512Mi → 256Mi", "config maps: cfg-v7 (was cfg-v6)"]


def test_lists_are_read_page_by_page_through_continue(standins: Standins, tmp_path: Path) -> None:
    server = standins(page_cap=2)
    for i in range(5):
        server.pods.append(pod(f"checkout-7d9f-{i}", labels=LABELS, created=NOW - timedelta(hours=1), owner=OWNER))
        server.events.append(
            event("Unhealthy", f"Readiness probe failed {i}", pod_name=f"checkout-7d9f-{i}", first=NOW - timedelta(minutes=5))
        )

    facts = infra_source(server, tmp_path).facts(*LAST_HOUR)

    assert sorted(f.detail for f in facts if f.reason == "Unhealthy") == [f"Unhealthy: Readiness probe failed {i}" for i in range(5)]
    pod_pages = [r for r in server.requests if r.startswith("/api/v1/namespaces/shop/pods?")]
    assert len(pod_pages) == 3 and all("continue=" in r for r in pod_pages[1:])


def test_events_and_nodes_forbidden_by_rbac_are_failures_naming_the_permission_beside_the_pod_facts(
    standins: Standins, tmp_path: Path
) -> None:
    server = standins(forbidden={"events", "nodes"})
    troubled_cluster(server)

    facts = infra_source(server, tmp_path).facts(*LAST_HOUR)

    assert isinstance(facts, Partial)
    assert any(f.kind == "oom_killed" for f in facts)
    reasons = {failure.query: failure.reason for failure in facts.failures}
    assert set(reasons) == {"events", "node node-a"}
    assert "forbidden to list events in namespace shop (403): grant get, list and watch on events" in reasons["events"]
    assert "deploy/kubernetes/rbac.yaml" in reasons["events"]
    assert "forbidden to get nodes cluster-wide" in reasons["node node-a"]


def test_pods_forbidden_by_rbac_is_a_one_line_source_error_naming_the_permission(standins: Standins, tmp_path: Path) -> None:
    server = standins(forbidden={"pods"})

    with pytest.raises(SourceError) as raised:
        infra_source(server, tmp_path).facts(*LAST_HOUR)

    message = str(raised.value)
    assert "forbidden to list pods in namespace shop (403)" in message and "deploy/kubernetes/rbac.yaml" in message
    assert 'cannot list resource "pods"' in message and "\n" not in message


def test_a_forbidden_source_is_a_degraded_entry_of_the_investigation_and_the_others_still_count(standins: Standins, tmp_path: Path) -> None:
    server = standins(forbidden={"pods"})
    specs = {
        "infra": [SourceSpec.model_validate({"kind": "kubernetes", **options_of(server, tmp_path)})],
        "deploys": [SourceSpec.model_validate({"kind": "kubernetes", **options_of(server, tmp_path)})],
    }
    server.replicasets.append(
        replicaset("checkout", revision=2, images=["checkout:v2"], created=NOW - timedelta(minutes=20), labels=LABELS)
    )

    inputs = gather(
        alert=Alert(title="checkout 5xx", service="checkout"),
        service="checkout",
        window_start=LAST_HOUR[0],
        window_end=LAST_HOUR[1],
        sources=build_specs(specs, tmp_path),
    )

    [degraded] = inputs.degraded
    assert degraded.component == "infra:kubernetes" and "forbidden to list pods" in degraded.reason
    assert [d.version for d in inputs.deploys] == ["v2"]


def test_a_429_is_retried_after_the_wait_the_server_asked_for(standins: Standins, tmp_path: Path) -> None:
    server = standins(failures=[(429, 0), (503, 0)])
    troubled_cluster(server)

    facts = infra_source(server, tmp_path).facts(*LAST_HOUR)

    assert any(f.kind == "oom_killed" for f in facts)
    assert server.failures == []


def test_a_server_that_does_not_answer_is_given_up_at_the_deadline(standins: Standins, tmp_path: Path) -> None:
    server = standins(delay_s=30)
    source = infra_source(server, tmp_path, deadline_s=2, timeout_s=0.5)

    began = time.monotonic()
    with pytest.raises(SourceError) as raised:
        source.facts(*LAST_HOUR)

    assert time.monotonic() - began < 5
    assert server.url in str(raised.value) and "timed out" in str(raised.value)


def test_a_refused_token_says_so(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    path = server.kubeconfig(tmp_path / "wrong" / "config", token="expired-token")
    source = build(kubernetes.KIND, {"namespace": "shop", "selector": SELECTOR, "kubeconfig": str(path)}, tmp_path)

    with pytest.raises(SourceError, match=r"the credentials were refused \(401\)"):
        source.facts(*LAST_HOUR)
    assert "expired-token" not in str(source.cluster.where)


def test_in_cluster_outside_a_pod_is_a_source_error_and_excludes_a_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in_cluster uses the pod's service account"):
        kubernetes.KubernetesInfraOptions.model_validate({"namespace": "shop", "selector": SELECTOR, "in_cluster": True, "kubeconfig": "k"})
    source = build(kubernetes.KIND, {"namespace": "shop", "selector": SELECTOR, "in_cluster": True}, tmp_path)

    with pytest.raises(SourceError, match=r"in-cluster service account.*cannot load credentials"):
        source.facts(*LAST_HOUR)


# --- Container logs ---------------------------------------------------------------------------------


def test_previous_and_current_logs_are_read_with_the_pod_and_container_as_labels(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(
        pod(
            "checkout-7d9f-oom",
            labels=LABELS,
            created=NOW - timedelta(hours=2),
            owner=OWNER,
            statuses=[
                container_status(
                    "app",
                    "checkout:v2",
                    restarts=1,
                    running_since=NOW - timedelta(minutes=2),
                    last_terminated={"reason": "OOMKilled", "exitCode": 137, "finishedAt": NOW - timedelta(minutes=3)},
                )
            ],
        )
    )
    server.add_log(
        "checkout-7d9f-oom",
        "app",
        [
            LogLine(NOW - timedelta(minutes=8), "ERROR worker pool exhausted, heap 97%"),
            LogLine(NOW - timedelta(minutes=4), 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space'),
            LogLine(NOW - timedelta(minutes=4), "\tat com.acme.cart.Cache.put(Cache.java:88)"),
        ],
        previous=True,
    )
    server.add_log("checkout-7d9f-oom", "app", [LogLine(NOW - timedelta(minutes=1), "starting checkout v2")])

    # NOW is fixed when the module loads: later in a long run the window no longer reaches the present, and the
    # source rightly stops asking for only the tail of the log.
    reaches_present = LAST_HOUR[1] >= datetime.now(UTC) - PRESENT
    events = list(build(kubernetes.LOGS_KIND, options_of(server, tmp_path), tmp_path).events(*LAST_HOUR))

    assert [(e.pod, e.attributes.get("previous")) for e in events] == [("checkout-7d9f-oom", "true")] * 2 + [("checkout-7d9f-oom", None)]
    oom = events[1]
    # The line without a time of its own is at the runtime's time; the frame folded into it.
    assert oom.ts == NOW - timedelta(minutes=4) and "OutOfMemoryError" in oom.message
    assert [str(frame) for frame in oom.frames] == ["com.acme.cart.Cache.put (com/acme/cart/Cache.java:88)"]
    assert events[2].message == "starting checkout v2" and events[2].ts == NOW - timedelta(minutes=1)
    log_requests = [r for r in server.requests if "/log?" in r]
    assert log_requests
    assert all("timestamps=True" in r and "limitBytes=" in r and "sinceSeconds=" in r for r in log_requests)
    assert all(("tailLines=" in r) == reaches_present for r in log_requests)


def test_a_container_log_is_bounded_by_its_byte_limit(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(pod("checkout-7d9f-1", labels=LABELS, created=NOW - timedelta(hours=2), owner=OWNER))
    lines = [LogLine(NOW - timedelta(minutes=50) + timedelta(seconds=i), f"INFO request {i} served in 12 ms") for i in range(2000)]
    server.add_log("checkout-7d9f-1", "app", lines)

    source = build(kubernetes.LOGS_KIND, options_of(server, tmp_path, log_bytes_per_container=4096), tmp_path)
    events = list(source.events(*LAST_HOUR))

    assert 0 < len(events) < 100
    assert source.account.bytes <= 4096


def test_a_window_in_the_past_stops_each_log_at_its_first_line_after_the_window(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(pod("checkout-7d9f-1", labels=LABELS, created=NOW - timedelta(days=2), owner=OWNER))
    start = NOW - timedelta(days=1)
    lines = [LogLine(start + timedelta(minutes=i), f"WARN slow query {i}") for i in range(120)]
    server.add_log("checkout-7d9f-1", "app", lines, endless=True)

    source = build(kubernetes.LOGS_KIND, options_of(server, tmp_path), tmp_path)
    events = list(source.events(start, start + timedelta(hours=1)))

    assert [e.message for e in events] == [f"WARN slow query {i}" for i in range(61)]
    assert not any("tailLines" in r for r in server.requests if "/log?" in r)


def test_a_pod_on_an_unreachable_kubelet_is_noted_once_and_the_other_pods_logs_still_count(standins: Standins, tmp_path: Path) -> None:
    server = standins(dead_kubelets={"checkout-7d9f-2"})
    for i in (1, 2):
        server.pods.append(pod(f"checkout-7d9f-{i}", labels=LABELS, created=NOW - timedelta(hours=2), owner=OWNER))
        server.add_log(f"checkout-7d9f-{i}", "app", [LogLine(NOW - timedelta(minutes=5), f"INFO pod {i} ok")])
    source = build(kubernetes.LOGS_KIND, options_of(server, tmp_path), tmp_path)

    events = list(source.events(*LAST_HOUR))

    assert [e.message for e in events] == ["INFO pod 1 ok"]
    [partial] = source.account.partial
    assert partial.startswith("checkout-7d9f-2/app: ") and "answered 500" in partial and "10250: i/o timeout" in partial
    # Not retried: a dead kubelet stays dead within one investigation.
    assert len([r for r in server.requests if "checkout-7d9f-2/log" in r]) == 1


def test_logs_forbidden_by_rbac_are_a_source_error_naming_pods_log(standins: Standins, tmp_path: Path) -> None:
    server = standins(forbidden={"pods/log"})
    server.pods.append(pod("checkout-7d9f-1", labels=LABELS, created=NOW - timedelta(hours=2), owner=OWNER))
    server.add_log("checkout-7d9f-1", "app", [LogLine(NOW - timedelta(minutes=5), "INFO ok")])

    with pytest.raises(SourceError, match=r"forbidden to get pods/log in namespace shop \(403\)"):
        list(build(kubernetes.LOGS_KIND, options_of(server, tmp_path), tmp_path).events(*LAST_HOUR))


# --- Rollouts ---------------------------------------------------------------------------------------


def test_every_new_replicaset_is_a_deploy_with_its_image_tag_and_a_commit_tag_as_sha(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.replicasets += [
        replicaset(
            "checkout",
            revision=4,
            images=["registry.example.com/shop/checkout:3f9a1c2"],
            created=NOW - timedelta(minutes=40),
            labels=LABELS,
        ),
        # Only the environment changed: the image is the same, the rollout is still a change.
        replicaset(
            "checkout",
            revision=5,
            images=["registry.example.com/shop/checkout:3f9a1c2"],
            created=NOW - timedelta(minutes=10),
            labels=LABELS,
        ),
        replicaset(
            "checkout",
            revision=6,
            images=[f"registry:5000/checkout@sha256:{'ab' * 32}", "envoy:1.29"],
            created=NOW - timedelta(minutes=5),
            labels=LABELS,
        ),
        replicaset("checkout", revision=3, images=["registry:5000/checkout"], created=NOW - timedelta(days=3), labels=LABELS),
    ]

    deploys = build(kubernetes.DEPLOYS_KIND, options_of(server, tmp_path), tmp_path).deploys(*LAST_HOUR)

    assert [(d.version, d.sha, d.service) for d in deploys] == [
        ("3f9a1c2", "3f9a1c2", "checkout"),
        ("3f9a1c2", "3f9a1c2", "checkout"),
        ("sha256:abababababab", None, "checkout"),
    ]


def test_the_commented_example_in_services_example_yaml_is_a_valid_catalog_entry_per_role() -> None:
    # Commented out there (the example service is the offline demo), so checked here.
    text = (Path(__file__).resolve().parents[3] / "services.example.yaml").read_text(encoding="utf-8")
    entries: dict[str, str] = {}
    role = None
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped.endswith(":") and stripped[:-1] in ("infra", "logs", "deploys"):
            role = stripped[:-1]
        elif role and stripped.startswith("- {kind: kubernetes"):
            entries[role] = stripped.removeprefix("- ")

    assert sorted(entries) == ["deploys", "infra", "logs"]
    for role_name, entry in entries.items():
        assert check_source(role_name, SourceSpec.model_validate(yaml.safe_load(entry))) == []


def test_the_rbac_manifest_grants_read_only_what_the_sources_read() -> None:
    path = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "rbac.yaml"
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    rules = [rule for doc in docs if doc["kind"] == "ClusterRole" for rule in doc["rules"]]

    granted = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {("", "pods"), ("", "pods/log"), ("", "events"), ("", "nodes"), ("apps", "replicasets"), ("apps", "deployments")}
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in rules)
    bound = {doc["roleRef"]["name"] for doc in docs if doc["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    assert bound == {doc["metadata"]["name"] for doc in docs if doc["kind"] == "ClusterRole"}


def test_a_selector_that_names_nothing_says_so_instead_of_reading_as_healthy(standins: Standins, tmp_path: Path) -> None:
    server = standins()
    server.pods.append(pod("search-5c4b-1", labels={"app": "search"}, created=NOW - timedelta(hours=1), owner="search-5c4b"))
    server.replicasets.append(
        replicaset("search", revision=1, images=["search:v9"], created=NOW - timedelta(minutes=10), labels={"app": "search"})
    )

    facts = infra_source(server, tmp_path).facts(*LAST_HOUR)
    deploys = build(kubernetes.DEPLOYS_KIND, options_of(server, tmp_path), tmp_path).deploys(*LAST_HOUR)

    assert list(facts) == [] and [(f.query, f.reason) for f in facts.failures] == [("pods", "no pods match 'team=shop' in namespace shop")]
    assert list(deploys) == [] and [f.reason for f in deploys.failures] == ["no ReplicaSets match 'team=shop' in namespace shop"]
