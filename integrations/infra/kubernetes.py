"""The `kubernetes` kinds' options and descriptors: one cluster read through the official client, for three roles.

For the service's namespace and label selector: facts about its pods, containers,
events and nodes (infra), its containers' logs, current and previous (logs), and its
ReplicaSet rollouts (deploys). Credentials come from a kubeconfig or the pod's service
account, never from the catalog; `deploy/kubernetes/rbac.yaml` grants the read-only
access the three need. The client library is imported when a source is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from integrations import roles
from integrations.logs.store import StoreOptions
from integrations.plugin import SourceKind, SourceOptions

if TYPE_CHECKING:
    from integrations.infra.kubernetes_deploys import KubernetesDeploySource
    from integrations.infra.kubernetes_facts import KubernetesInfraSource
    from integrations.infra.kubernetes_logs import KubernetesLogSource

# A namespace is a DNS label; anything else is a typo the catalog check should catch.
_NAMESPACE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class KubernetesTarget(SourceOptions):
    """Which cluster, namespace and pods: what the three kinds share."""

    namespace: str = Field(pattern=_NAMESPACE, description="the namespace the service runs in")
    selector: str = Field(
        min_length=1, description="label selector of the service's pods (and of its ReplicaSets), e.g. 'app=checkout' or 'app in (a,b)'"
    )
    kubeconfig: str | None = Field(
        None,
        description="kubeconfig file, relative to the catalog's folder (default: $KUBECONFIG, else ~/.kube/config); "
        "its credentials are used as they are, exec plugins (aws, gcloud) included",
    )
    context: str | None = Field(None, description="kubeconfig context to use (default: the file's current context)")
    in_cluster: bool = Field(
        False, description="use the service account of the pod this runs in instead of a kubeconfig (for a worker deployed in the cluster)"
    )
    max_pods: int = Field(50, ge=1, le=1000, description="most pods read; the troubled ones (restarting, not ready) first, then the newest")

    @model_validator(mode="after")
    def _one_way_in(self) -> KubernetesTarget:
        if self.in_cluster and (self.kubeconfig or self.context):
            raise ValueError("in_cluster uses the pod's service account: leave kubeconfig and context out")
        return self


class KubernetesBounds(SourceOptions):
    """Bounds of a read made of a few list calls (infra, deploys)."""

    deadline_s: float = Field(30.0, gt=0, description="longest time for one read, every call and retry included")
    timeout_s: float = Field(10.0, gt=0, description="longest wait for one request")
    retries: int = Field(3, ge=0, le=10, description="retries of one request on 429 and 5xx answers, within the deadline")


class KubernetesInfraOptions(KubernetesBounds, KubernetesTarget):
    max_events: int = Field(5000, ge=1, description="most Warning events of the namespace looked at, in the order the API lists them")
    max_nodes: int = Field(20, ge=0, le=500, description="most nodes (those the pods run on) whose conditions are read; 0: none")


class KubernetesLogOptions(StoreOptions, KubernetesTarget):
    log_bytes_per_container: int = Field(
        4 * 1024**2, ge=1024, description="most bytes of one container's log read (the API's limitBytes), current and previous each"
    )
    tail_lines: int = Field(
        20_000, ge=1, description="most lines of one container's log when the window reaches the present (newest kept; the API's tailLines)"
    )
    previous: bool = Field(
        True, description="also read the log of each restarted container's previous instance (what it said before it died)"
    )
    containers: list[str] | None = Field(None, description="containers whose logs are read (default: all, and failed init containers)")


class KubernetesDeployOptions(KubernetesBounds, KubernetesTarget):
    actor_annotation: str = Field(
        "kubernetes.io/change-cause",
        description="ReplicaSet annotation naming who or what rolled it out (the Deployment's annotations are copied onto its ReplicaSets)",
    )
    max_replicasets: int = Field(1000, ge=1, description="most ReplicaSets of the selector looked at")


def _build_infra(options: KubernetesInfraOptions, base_dir: Path) -> KubernetesInfraSource:
    from integrations.infra.kubernetes_facts import KubernetesInfraSource

    return KubernetesInfraSource(options, base_dir, name=options.name or "kubernetes")


def _build_logs(options: KubernetesLogOptions, base_dir: Path) -> KubernetesLogSource:
    from integrations.infra.kubernetes_logs import KubernetesLogSource

    return KubernetesLogSource(options, base_dir, name=options.name or "kubernetes")


def _build_deploys(options: KubernetesDeployOptions, base_dir: Path) -> KubernetesDeploySource:
    from integrations.infra.kubernetes_deploys import KubernetesDeploySource

    return KubernetesDeploySource(options, base_dir, name=options.name or "kubernetes")


def _check_infra(source: KubernetesInfraSource) -> str:
    return source.check()


def _check_logs(source: KubernetesLogSource) -> str:
    return source.check()


def _check_deploys(source: KubernetesDeploySource) -> str:
    return source.check()


KIND = SourceKind(
    name="kubernetes",
    role=roles.INFRA,
    options=KubernetesInfraOptions,
    build=_build_infra,
    check=_check_infra,
    summary="a Kubernetes namespace and selector: pod and container states, warning events, resources and node conditions",
)

LOGS_KIND = SourceKind(
    name="kubernetes",
    role=roles.LOGS,
    options=KubernetesLogOptions,
    build=_build_logs,
    check=_check_logs,
    summary="container logs of a Kubernetes selector's pods, current and previous instance, each event with its pod",
)

DEPLOYS_KIND = SourceKind(
    name="kubernetes",
    role=roles.DEPLOYS,
    options=KubernetesDeployOptions,
    build=_build_deploys,
    check=_check_deploys,
    summary="Deployment rollouts of a Kubernetes selector: each new ReplicaSet with its image and revision",
)
