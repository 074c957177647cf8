"""What a cluster's objects state, as `InfraFact`s: a pod's containers and conditions, a Warning event, a node's conditions.

Pure functions over the client's models; `now` is the moment of the read, when a
state that still holds (a container waiting, a node NotReady) is last known to hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from integrations.infra.base import InfraFact
from integrations.infra.kubernetes_client import owners, utc

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
# What a `Failed` event says when the container cannot be configured (CreateContainerConfigError's messages).
_CONFIG_WORDS = ("configmap", "secret", "couldn't find key", "createcontainerconfigerror")
# Node conditions that are a problem when True (Ready is one when not True).
PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


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
    """A Warning event as a fact; None for reasons that state no failure."""
    reason, message = event.reason or "", _line(event.message)
    kind = EVENTS.get(reason) if event.type == "Warning" else None
    if kind is None:
        return None
    lowered = message.lower()
    # "Back-off pulling image", "Failed to pull image", "Error: ErrImagePull"; an executable not found is no image problem.
    if reason in ("BackOff", "Failed") and ("pull" in lowered or "invalidimagename" in lowered):
        kind = "image_pull"
    elif reason == "Failed" and any(word in lowered for word in _CONFIG_WORDS):
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
    for condition in (node.status.conditions or ()) if node.status else ():
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


def _line(text: str | None) -> str:
    return " ".join((text or "").split())[:500]


def _quantities(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(values.items())) or "none"


def _container_of(field_path: str | None) -> str | None:
    """`spec.containers{app}` → `app`: the container an event is about."""
    if not field_path or "{" not in field_path:
        return None
    return field_path.partition("{")[2].partition("}")[0] or None


def rollout_facts(replicasets: list[Any], source: str) -> list[InfraFact]:
    """Each ReplicaSet as a rollout of its Deployment, saying what changed from the revision before it."""
    by_owner: dict[str, list[Any]] = {}
    for replicaset in replicasets:
        meta = replicaset.metadata
        owner = next((ref.name for ref in meta.owner_references or () if ref.kind == "Deployment"), meta.name)
        by_owner.setdefault(owner, []).append(replicaset)
    found = []
    for owner, history in by_owner.items():
        history.sort(key=_revision)
        for before, after in zip([None, *history], history, strict=False):
            created = utc(after.metadata.creation_timestamp)
            changes = template_changes(before, after) if before is not None else ["the oldest revision kept"]
            revision = _revision(after)
            found.append(
                InfraFact(
                    "rollout",
                    f"deployment/{owner}",
                    f"deployment {owner} rolled out revision {revision} ({after.metadata.name}): {'; '.join(changes)}",
                    at=created,
                    last_at=created,
                    reason="Rollout",
                    source=source,
                    attributes={"revision": str(revision), "replicaset": after.metadata.name, "images": ",".join(_images(after).values())},
                )
            )
    return found


def template_changes(before: Any, after: Any) -> list[str]:
    """What differs between two revisions' pod templates: images, env names, commands, resources, config maps and secrets.

    Env values are not shown: a literal value may be a credential.
    """
    old, new = _containers(before), _containers(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            changes.append(f"container {name} {'added' if name in new else 'removed'}")
            continue
        a, b = old[name], new[name]
        if a.image != b.image:
            changes.append(f"image {name}: {a.image} → {b.image}")
        envs = _env_changes(a, b)
        if envs:
            changes.append(f"env {name}: {envs}")
        if (a.command, a.args) != (b.command, b.args):
            changes.append(f"command {name}: {' '.join([*(b.command or ()), *(b.args or ())])[:200]}")
        resources = _resource_changes(a.resources, b.resources)
        if resources:
            changes.append(f"resources {name}: {resources}")
    for what, (was, now) in _references(before, after).items():
        if was != now:
            changes.append(f"{what}: {', '.join(sorted(now - was)) or 'none'} (was {', '.join(sorted(was - now)) or 'none'})")
    return changes or ["pod template changed (labels or annotations)"]


def _revision(replicaset: Any) -> int:
    value = (replicaset.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0")
    return int(value) if value.isdecimal() else 0


def _containers(replicaset: Any) -> dict[str, Any]:
    template = replicaset.spec.template if replicaset.spec else None
    return {c.name: c for c in (template.spec.containers if template and template.spec else ())}


def _images(replicaset: Any) -> dict[str, str]:
    return {name: container.image for name, container in _containers(replicaset).items()}


def _env_changes(a: Any, b: Any) -> str:
    old = {e.name: (e.value, str(e.value_from)) for e in a.env or ()}
    new = {e.name: (e.value, str(e.value_from)) for e in b.env or ()}
    parts = [f"{n} added" for n in sorted(set(new) - set(old))]
    parts += [f"{n} removed" for n in sorted(set(old) - set(new))]
    parts += [f"{n} changed" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    return ", ".join(parts)


def _resource_changes(a: Any, b: Any) -> str:
    parts = []
    for side in ("requests", "limits"):
        old = dict(getattr(a, side, None) or {}) if a else {}
        new = dict(getattr(b, side, None) or {}) if b else {}
        parts += [
            f"{side} {k} {old.get(k, 'none')} → {new.get(k, 'none')}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
        ]
    return ", ".join(parts)


def _references(before: Any, after: Any) -> dict[str, tuple[set[str], set[str]]]:
    """The config maps and secrets each revision's pods read (volumes, envFrom, env valueFrom), by name."""
    was, now = _referenced(before), _referenced(after)
    return {"config maps": (was[0], now[0]), "secrets": (was[1], now[1])}


def _referenced(replicaset: Any) -> tuple[set[str], set[str]]:
    maps: set[str] = set()
    secrets: set[str] = set()
    template = replicaset.spec.template if replicaset.spec else None
    spec = template.spec if template else None
    for volume in (spec.volumes or ()) if spec else ():
        if volume.config_map:
            maps.add(volume.config_map.name)
        if volume.secret:
            secrets.add(volume.secret.secret_name)
    for container in _containers(replicaset).values():
        for source in container.env_from or ():
            if source.config_map_ref:
                maps.add(source.config_map_ref.name)
            if source.secret_ref:
                secrets.add(source.secret_ref.name)
        for env in container.env or ():
            ref = env.value_from
            if ref and ref.config_map_key_ref:
                maps.add(ref.config_map_key_ref.name)
            if ref and ref.secret_key_ref:
                secrets.add(ref.secret_key_ref.name)
    return maps, secrets
