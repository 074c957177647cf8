"""The infra role: what the platform running the service states about it (Kubernetes pods, events, nodes).

These are facts, not statistics: a container OOM-killed three times, a crash loop with
exit code 127, a readiness probe failing since 03:02. The analysis weighs them with the
log signatures, suspects and metric shifts, and a fact outranks a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

# What a fact can say; the analysis maps each to the failure it points at.
FACT_KINDS: Final = (
    "oom_killed",  # a container was killed for exceeding its memory limit
    "crash_loop",  # a container restarts over and over (CrashLoopBackOff, BackOff events)
    "container_error",  # a container exited with an error (exit code, reason Error/ContainerCannotRun)
    "image_pull",  # the image cannot be pulled (ImagePullBackOff, ErrImagePull)
    "config_error",  # the container cannot be configured (CreateContainerConfigError: missing secret/config map/key)
    "probe_failed",  # liveness/readiness/startup probe failures (Unhealthy events)
    "unschedulable",  # a pod cannot be placed (FailedScheduling: resources, taints, affinity)
    "mount_failed",  # a volume cannot be mounted (FailedMount, FailedAttachVolume)
    "evicted",  # a pod was evicted (node pressure)
    "node_condition",  # a node is NotReady or under memory/disk/PID pressure, or unreachable
    "cpu_throttled",  # CPU throttling reported for a container
    "resource_limits",  # the requests/limits a container runs with (context, not a failure)
    "restarts",  # restart count of a container (context)
    "rollout",  # a Deployment/ReplicaSet rollout: new image, env or config
    "cert_expiry",  # a certificate or token expiry date seen
    "dns_failure",  # name resolution failing inside the cluster
    "network_policy",  # traffic denied by a network policy
)


@dataclass(frozen=True, slots=True)
class InfraFact:
    """One fact about the service's infrastructure, with when it happened where that is known (UTC)."""

    kind: str
    subject: str  # what it is about: pod/container, node or deployment name
    detail: str  # one line a responder reads, as the platform said it
    at: datetime | None = None  # first seen in the window (None: the text carried no time)
    last_at: datetime | None = None
    count: int = 1
    reason: str | None = None  # the platform's own reason word: OOMKilled, CrashLoopBackOff, FailedScheduling
    exit_code: int | None = None
    source: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class InfraSource(Protocol):
    """A place that states facts about the service's pods, containers and nodes."""

    name: str

    def facts(self, start: datetime, end: datetime) -> list[InfraFact]:
        """Facts whose time falls in [start, end], and facts without a time."""
        ...
