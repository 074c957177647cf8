"""What a cluster states about the service, as `InfraFact`s: container states, warning events, resources, node conditions.

A state that still holds (a container waiting in CrashLoopBackOff, a node NotReady)
runs from when it began to the moment of the read; an event from its first to its last
occurrence. A fact is kept when that span meets the window. A part that cannot be read
(events or nodes forbidden by RBAC) is a failure of that part, shown beside the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integrations.errors import SourceError
from integrations.infra.base import InfraFact
from integrations.infra.kubernetes import KubernetesInfraOptions
from integrations.infra.kubernetes_client import (
    Cluster,
    PartFailure,
    Partial,
    Reader,
    is_forbidden,
    is_missing,
    list_all,
    list_replicasets,
    owners,
    select_pods,
)
from integrations.infra.kubernetes_states import event_fact, node_facts, pod_facts, resource_facts, rollout_facts

# A Deployment keeps 10 old ReplicaSets by default: this covers a hundred Deployments under one selector.
MAX_REPLICASETS = 1000


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

    def facts(self, start: datetime, end: datetime) -> Partial[InfraFact]:
        """Facts whose span meets [start, end], and facts without a time, oldest first."""
        now = datetime.now(UTC)
        read = Reader(self.cluster, self.options)
        pods, matched = select_pods(self.cluster, read, self.options.max_pods)
        found: list[InfraFact] = []
        failures: list[PartFailure] = []
        if not matched:
            # Nothing found must not read as nothing wrong.
            failures.append(PartFailure("pods", f"no pods match '{self.options.selector}' in namespace {self.cluster.namespace}"))
        elif matched > len(pods):
            failures.append(PartFailure("pods", f"{matched} pods match; the {len(pods)} most troubled and newest were read (max_pods)"))
        for pod in pods:
            found += pod_facts(pod, now, self.name)
        found += resource_facts(pods, self.name)
        try:
            found += self._events(read, pods)
        except SourceError as exc:
            failures.append(PartFailure("events", str(exc)))
        try:
            found += rollout_facts(list_replicasets(self.cluster, read, MAX_REPLICASETS), self.name)
        except SourceError as exc:
            failures.append(PartFailure("replicasets", str(exc)))
        nodes = sorted({pod.spec.node_name for pod in pods if pod.spec and pod.spec.node_name})[: self.options.max_nodes]
        for node in nodes:
            try:
                found += self._node(read, node, now)
            except SourceError as exc:
                failures.append(PartFailure(f"node {node}", str(exc)))
                if is_forbidden(exc):
                    break
        kept = [fact for fact in found if _meets(fact, start, end)]
        kept.sort(key=lambda fact: (fact.at is None, fact.at or now, fact.subject))
        return Partial(kept, failures)

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
            # Normal events say what went right; a busy namespace has thousands.
            field_selector="type=Warning",
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
            if is_missing(exc):
                return [InfraFact("node_condition", f"node/{name}", f"node {name} no longer exists", reason="NodeGone", source=self.name)]
            raise
        return node_facts(node, now, self.name)


def _meets(fact: InfraFact, start: datetime, end: datetime) -> bool:
    if fact.at is None:
        return fact.last_at is None or fact.last_at >= start
    return fact.at <= end and (fact.last_at or fact.at) >= start
