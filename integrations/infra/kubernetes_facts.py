"""What a cluster states about the service, as `InfraFact`s: container states, warning events, resources, node conditions.

A state that still holds (a container waiting in CrashLoopBackOff, a node NotReady)
runs from when it began to the moment of the read; an event from its first to its last
occurrence. A fact is kept when that span meets the window. A part that cannot be read
(events or nodes forbidden by RBAC) is a failure of that part, shown beside the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integrations.errors import SourceError
from integrations.infra.base import InfraFact
from integrations.infra.kubernetes import KubernetesInfraOptions
from integrations.infra.kubernetes_client import Cluster, Reader, list_all, owners, select_pods, utc

# Waiting reasons and the fact each one is.
WAITING: dict[str, str] = {
    "CrashLoopBackOff": "crash_loop",
    "ImagePullBackOff": "image_pull",
    "ErrImagePull": "image_pull",
    "InvalidImageName": "image_pull",
    "CreateContainerConfigError": "config_error",
    "CreateContainerError": "container_error",
    "RunContainerError": "container_error",
}
# Event reasons and the fact each one is; `BackOff` and `Failed` depend on their message.
EVENTS: dict[str, str] = {
    "BackOff": "crash_loop",
    "Unhealthy": "probe_failed",
    "FailedScheduling": "unschedulable",
    "FailedCreate": "unschedulable",
    "FailedMount": "mount_failed",
    "FailedAttachVolume": "mount_failed",
    "Evicted": "evicted",
    "Preempting": "evicted",
    "NodeNotReady": "node_condition",
    "OOMKilling": "oom_killed",
    "Failed": "container_error",
    "FailedCreatePodSandBox": "container_error",
}
# Normal events that still say something failed.
_NORMAL_FAILURES = ("failed liveness probe", "failed startup probe")
# Node conditions that are a problem when True (Ready is one when not True).
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True, slots=True)
class PartFailure:
    """One part of the read that gave nothing (events, nodes), and why: shown as a degraded entry beside the facts."""

    query: str
    reason: str


class FactResult(list[InfraFact]):
    """The facts read, plus the parts that failed."""

    def __init__(self, facts: list[InfraFact], failures: list[PartFailure]) -> None:
        super().__init__(facts)
        self.failures = failures


class KubernetesInfraSource:
    """Facts about one selector's pods in one namespace, read through the official client."""

    def __init__(self, options: KubernetesInfraOptions, base_dir: Path, name: str = "kubernetes") -> None:
        self.options = options
        self.name = name
        self.cluster = Cluster(options, base_dir)

    def describe(self) -> str:
        return self.cluster.describe()

    def check(self) -> str:
        read = Reader(self.cluster, self.options)
        _, matched = select_pods(self.cluster, read, self.options.max_pods)
        if not matched:
            raise SourceError(f"{self.cluster.where}: no pods match '{self.options.selector}' in namespace {self.cluster.namespace}")
        return f"{matched} pods match '{self.options.selector}' in namespace {self.cluster.namespace} on {self.cluster.where}"

    def facts(self, start: datetime, end: datetime) -> FactResult:
        """Facts whose span meets [start, end], and facts without a time, oldest first."""
        now = datetime.now(UTC)
        read = Reader(self.cluster, self.options)
        pods, matched = select_pods(self.cluster, read, self.options.max_pods)
        found: list[InfraFact] = []
        failures: list[PartFailure] = []
        if matched > len(pods):
            failures.append(PartFailure("pods", f"{matched} pods match; the {len(pods)} most troubled and newest were read (max_pods)"))
        for pod in pods:
            found += pod_facts(pod, now, self.name)
        found += resource_facts(pods, self.name)
        try:
            found += self._events(read, pods)
        except SourceError as exc:
            failures.append(PartFailure("events", str(exc)))
        nodes = sorted({pod.spec.node_name for pod in pods if pod.spec and pod.spec.node_name})[: self.options.max_nodes]
        for node in nodes:
            try:
                found += self._node(read, node, now)
            except SourceError as exc:
                failures.append(PartFailure(f"node {node}", str(exc)))
                if "(403)" in str(exc):
                    break
        kept = [fact for fact in found if _meets(fact, start, end)]
        kept.sort(key=lambda fact: (fact.at is None, fact.at or now, fact.subject))
        return FactResult(kept, failures)

    def _events(self, read: Reader, pods: list[Any]) -> list[InfraFact]:
        names = {pod.metadata.name for pod in pods}
        # Pods already replaced still have their events for an hour: they are matched by their controller's prefix.
        prefixes = tuple(f"{owner}-" for pod in pods for owner in owners(pod))
        found = []
        for event in list_all(
            read,
            self.cluster.core().list_namespaced_event,
            what="listing events",
            resource="events",
            limit=self.options.max_events,
            namespace=self.cluster.namespace,
        ):
            target = event.involved_object
            name = (target.name or "") if target else ""
            if name in names or name.startswith(prefixes) or name in {p.rstrip("-") for p in prefixes}:
                fact = event_fact(event, self.name)
                if fact is not None:
                    found.append(fact)
        return found

    def _node(self, read: Reader, name: str, now: datetime) -> list[InfraFact]:
        core = self.cluster.core()
        try:
            node = read(
                lambda timeout: core.read_node(name, _request_timeout=timeout), what=f"reading node {name}", verb="get", resource="nodes"
            )
        except SourceError as exc:
            if "answered 404" in str(exc):
                return [InfraFact("node_condition", f"node/{name}", f"node {name} no longer exists", reason="NodeGone", source=self.name)]
            raise
        return node_facts(node, now, self.name)


def pod_facts(pod: Any, now: datetime, source: str) -> list[InfraFact]:
    """The facts a pod's status states: waiting and terminated containers, restarts, and why the pod is not running."""
    status, name = pod.status, pod.metadata.name
    if status is None:
        return []
    found: list[InfraFact] = []
    statuses = [(c, "") for c in status.container_statuses or ()] + [(c, "init ") for c in status.init_container_statuses or ()]
    for container, role in statuses:
        found += _container_facts(container, f"{name}/{container.name}", role, status.start_time, now, source)
    for condition in status.conditions or ():
        if condition.type == "PodScheduled" and condition.status == "False":
            found.append(
                InfraFact(
                    "unschedulable",
                    name,
                    f"pod {name} cannot be scheduled: {condition.message or condition.reason}",
                    at=utc(condition.last_transition_time),
                    last_at=now,
                    reason=condition.reason or "Unschedulable",
                    source=source,
                )
            )
    if status.reason == "Evicted":
        ready = next((c for c in status.conditions or () if c.type == "Ready"), None)
        at = utc(ready.last_transition_time) if ready else None
        found.append(
            InfraFact(
                "evicted", name, f"pod {name} was evicted: {status.message or ''}".rstrip(": "), at=at, reason="Evicted", source=source
            )
        )
    return found


def _container_facts(container: Any, subject: str, role: str, started: datetime | None, now: datetime, source: str) -> list[InfraFact]:
    found: list[InfraFact] = []
    restarts = int(container.restart_count or 0)
    attributes = {"restart_count": str(restarts), "image": container.image or ""}
    state, last = container.state, container.last_state
    last_terminated = last.terminated if last else None
    last_exit = utc(last_terminated.finished_at) if last_terminated else None
    waiting = state.waiting if state else None
    if waiting is not None and waiting.reason in WAITING:
        detail = f"{role}container {subject} is waiting: {waiting.reason}" + (f": {_line(waiting.message)}" if waiting.message else "")
        exit_code = last_terminated.exit_code if last_terminated and waiting.reason == "CrashLoopBackOff" else None
        # Waiting since its last exit, or since the pod started when it never ran.
        found.append(
            InfraFact(
                WAITING[waiting.reason],
                subject,
                detail,
                at=last_exit or utc(started),
                last_at=now,
                reason=waiting.reason,
                exit_code=exit_code,
                source=source,
                attributes=attributes,
            )
        )
    for terminated in (state.terminated if state else None, last_terminated):
        if terminated is None or (terminated.exit_code == 0 and terminated.reason != "OOMKilled"):
            continue
        reason = terminated.reason or "Error"
        kind = "oom_killed" if reason == "OOMKilled" else "container_error"
        said = f": {_line(terminated.message)}" if terminated.message else ""
        detail = f"{role}container {subject} exited with code {terminated.exit_code} ({reason}){said}"
        at = utc(terminated.finished_at) or utc(terminated.started_at)
        found.append(
            InfraFact(
                kind,
                subject,
                detail,
                at=at,
                last_at=at,
                reason=reason,
                exit_code=terminated.exit_code,
                source=source,
                attributes=attributes,
            )
        )
    if restarts:
        found.append(
            InfraFact(
                "restarts",
                subject,
                f"{role}container {subject} restarted {restarts} times",
                at=last_exit,
                last_at=last_exit,
                count=restarts,
                reason="Restarted",
                source=source,
                attributes=attributes,
            )
        )
    return found


def resource_facts(pods: list[Any], source: str) -> list[InfraFact]:
    """Each container's requests and limits, once per controller (its pods share them)."""
    seen: dict[tuple[str, str, str], InfraFact] = {}
    for pod in pods:
        group = (owners(pod) or [pod.metadata.name])[0]
        for container in pod.spec.containers if pod.spec else ():
            resources = container.resources
            requests = dict(resources.requests or {}) if resources else {}
            limits = dict(resources.limits or {}) if resources else {}
            text = "requests " + _quantities(requests) + "; limits " + _quantities(limits)
            key = (group, container.name, text)
            if key not in seen:
                attributes = {
                    **{f"requests.{k}": str(v) for k, v in requests.items()},
                    **{f"limits.{k}": str(v) for k, v in limits.items()},
                }
                seen[key] = InfraFact(
                    "resource_limits",
                    f"{group}/{container.name}",
                    f"container {container.name} of {group}: {text}",
                    reason="Resources",
                    source=source,
                    attributes=attributes,
                )
    return list(seen.values())


def event_fact(event: Any, source: str) -> InfraFact | None:
    """A warning event (or a Normal one saying a probe killed a container) as a fact; None for the rest."""
    reason, message = event.reason or "", _line(event.message)
    if event.type == "Warning":
        kind = EVENTS.get(reason)
    elif reason == "Killing" and any(words in message for words in _NORMAL_FAILURES):
        kind = "probe_failed"
    else:
        kind = None
    if kind is None:
        return None
    lowered = message.lower()
    if reason in ("BackOff", "Failed") and ("pull" in lowered or "image" in lowered):
        kind = "image_pull"
    elif reason == "Failed" and ("not found" in lowered or "configmap" in lowered or "secret" in lowered):
        kind = "config_error"
    series = event.series
    first = utc(event.first_timestamp) or utc(event.event_time)
    last = utc(event.last_timestamp) or (utc(series.last_observed_time) if series else None) or first
    count = event.count or (series.count if series else None) or 1
    target = event.involved_object
    subject = target.name if target else ""
    container = _container_of(target.field_path if target else None)
    if container:
        subject = f"{subject}/{container}"
    attributes = {"object": f"{(target.kind or '').lower()}/{target.name}" if target else "", "type": event.type or ""}
    return InfraFact(
        kind, subject, f"{reason}: {message}", at=first, last_at=last, count=int(count), reason=reason, source=source, attributes=attributes
    )


def node_facts(node: Any, now: datetime, source: str) -> list[InfraFact]:
    """A node's conditions that are a problem: not Ready, or under pressure."""
    name = node.metadata.name
    found = []
    for condition in node.status.conditions or () if node.status else ():
        bad = condition.status != "True" if condition.type == "Ready" else condition.type in PRESSURES and condition.status == "True"
        if not bad:
            continue
        word = "NotReady" if condition.type == "Ready" else condition.type
        said = f": {_line(condition.message)}" if condition.message else ""
        found.append(
            InfraFact(
                "node_condition",
                f"node/{name}",
                f"node {name} {word} ({condition.reason or condition.status}){said}",
                at=utc(condition.last_transition_time),
                last_at=now,
                reason=word,
                source=source,
                attributes={"condition": condition.type, "status": condition.status},
            )
        )
    return found


def _meets(fact: InfraFact, start: datetime, end: datetime) -> bool:
    if fact.at is None:
        return fact.last_at is None or fact.last_at >= start
    return fact.at <= end and (fact.last_at or fact.at) >= start


def _line(text: str | None) -> str:
    return " ".join((text or "").split())[:500]


def _quantities(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items())) or "none"


def _container_of(field_path: str | None) -> str | None:
    """`spec.containers{app}` → `app`: the container an event is about."""
    if not field_path or "{" not in field_path:
        return None
    return field_path.partition("{")[2].partition("}")[0] or None
