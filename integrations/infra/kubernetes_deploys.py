"""Deployment rollouts as deploys: each ReplicaSet a Deployment created in the window, with its image and revision.

A Deployment makes a new ReplicaSet whenever its pod template changes (image, env,
a config map reference, a command), so every new ReplicaSet is a change worth
suspecting, even when its image is the one before.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from integrations.code.base import Deploy
from integrations.errors import SourceError
from integrations.infra.kubernetes import KubernetesDeployOptions
from integrations.infra.kubernetes_client import Cluster, PartFailure, Partial, Reader, list_replicasets, utc

REVISION = "deployment.kubernetes.io/revision"
# Image tags that are a commit: CI tags images with the sha they were built from.
_SHA = re.compile(r"^(?:sha-|g)?([0-9a-f]{7,40})$")


class KubernetesDeploySource:
    """The rollouts of one selector's Deployments in one namespace, read through the official client."""

    def __init__(self, options: KubernetesDeployOptions, base_dir: Path, name: str = "kubernetes") -> None:
        self.options = options
        self.name = name
        self.cluster = Cluster(options, base_dir)

    def describe(self) -> str:
        return f"ReplicaSets of {self.cluster.describe()}"

    def check(self) -> str:
        sets = list_replicasets(self.cluster, Reader(self.cluster, self.options), self.options.max_replicasets)
        if not sets:
            raise SourceError(f"{self.cluster.where}: no ReplicaSets match '{self.options.selector}' in namespace {self.cluster.namespace}")
        newest = max(sets, key=lambda rs: utc(rs.metadata.creation_timestamp) or datetime.min.replace(tzinfo=UTC))
        return f"{len(sets)} ReplicaSets match '{self.options.selector}'; the newest is {_describe(newest)}"

    def deploys(self, start: datetime, end: datetime) -> Partial[Deploy]:
        """ReplicaSets created in [start, end], oldest first, each as the deploy of its Deployment."""
        found = []
        sets = list_replicasets(self.cluster, Reader(self.cluster, self.options), self.options.max_replicasets)
        for replicaset in sets:
            created = utc(replicaset.metadata.creation_timestamp)
            if created is None or not start <= created <= end:
                continue
            found.append(self._deploy(replicaset, created))
        found.sort(key=lambda deploy: (deploy.at, deploy.service))
        # No rollout in the window is an answer; no ReplicaSet at all is a selector that names nothing.
        nothing = (
            []
            if sets
            else [PartFailure("replicasets", f"no ReplicaSets match '{self.options.selector}' in namespace {self.cluster.namespace}")]
        )
        return Partial(found, nothing)

    def _deploy(self, replicaset: Any, created: datetime) -> Deploy:
        meta = replicaset.metadata
        annotations = meta.annotations or {}
        owner = next((ref.name for ref in meta.owner_references or () if ref.kind == "Deployment"), meta.name)
        version = version_of(images(replicaset))
        match = _SHA.match(version)
        return Deploy(
            at=created,
            service=owner,
            version=version,
            actor=annotations.get(self.options.actor_annotation, ""),
            sha=match.group(1) if match else None,
        )


def images(replicaset: Any) -> list[str]:
    template = replicaset.spec.template if replicaset.spec else None
    return [container.image for container in (template.spec.containers if template and template.spec else ())]


def version_of(names: list[str]) -> str:
    """The first container's image tag (its digest when pinned by one, its name when untagged): what people call the version."""
    if not names:
        return ""
    image = names[0]
    if "@" in image:
        return image.rpartition("@")[2][:19]
    name, _, tag = image.rpartition(":")
    # `registry:5000/app` has a colon before the last slash: a port, not a tag.
    if not name or "/" in tag:
        return image
    return tag


def _describe(replicaset: Any) -> str:
    meta = replicaset.metadata
    revision = (meta.annotations or {}).get(REVISION, "?")
    return f"{meta.name} (revision {revision}, {', '.join(images(replicaset)) or 'no image'})"
