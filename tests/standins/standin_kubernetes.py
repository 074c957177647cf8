"""A local Kubernetes API server for the official `kubernetes` client: pods, events, logs, ReplicaSets, Deployments, nodes.

Objects are the API's JSON as `kubectl get -o json` shows them (the builders below
fill the fields the client requires); lists page with `limit` and `metadata.continue`
(at most `page_cap` items a page, so every test pages); label selectors filter pods,
ReplicaSets and Deployments; logs honour `timestamps`, `sinceSeconds`, `tailLines`,
`limitBytes` and `previous`, and stream chunked. A bearer token is required (401
Status otherwise) and a resource can be forbidden (403 Status as RBAC answers).
`kubeconfig()` writes the file the client is pointed at.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from loopback import LoopbackServer

SERVICE_ACCOUNT = "system:serviceaccount:ops:incident-responder"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def nano(moment: datetime) -> str:
    """The runtime's log time: RFC 3339 with nanoseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def container_status(
    name: str,
    image: str,
    *,
    restarts: int = 0,
    running_since: datetime | None = None,
    waiting: tuple[str, str] | None = None,
    terminated: dict[str, Any] | None = None,
    last_terminated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A containerStatuses entry; `terminated` dicts: reason, exitCode, startedAt, finishedAt (datetimes), message."""
    if waiting is not None:
        state: dict[str, Any] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    elif terminated is not None:
        state = {"terminated": _terminated(terminated)}
    else:
        state = {"running": {"startedAt": stamp(running_since or datetime.now(UTC))}}
    return {
        "name": name,
        "image": image,
        "imageID": f"docker-pullable://{image}@sha256:{'0' * 64}",
        "containerID": f"containerd://{uuid.uuid4().hex}",
        "ready": "running" in state,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
        "lastState": {"terminated": _terminated(last_terminated)} if last_terminated else {},
    }


def _terminated(values: dict[str, Any]) -> dict[str, Any]:
    out = {
        "exitCode": values.get("exitCode", 1),
        "reason": values.get("reason", "Error"),
        "containerID": f"containerd://{uuid.uuid4().hex}",
    }
    for key in ("startedAt", "finishedAt"):
        if key in values:
            out[key] = stamp(values[key])
    if "message" in values:
        out["message"] = values["message"]
    return out


def pod(
    name: str,
    *,
    namespace: str = "shop",
    labels: dict[str, str],
    created: datetime,
    node: str | None = "node-a",
    owner: str | None = None,
    containers: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
    reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    containers = containers or [{"name": "app", "image": "registry.example.com/shop/checkout:v1"}]
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1",
        "creationTimestamp": stamp(created),
        "labels": labels,
    }
    if owner:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": str(uuid.uuid4()),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always", "serviceAccountName": "default"}
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {
        "phase": phase,
        "startTime": stamp(created),
        "conditions": conditions
        or [
            {"type": "Ready", "status": "True", "lastTransitionTime": stamp(created)},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(created)},
        ],
        "containerStatuses": statuses
        if statuses is not None
        else [container_status(c["name"], c["image"], running_since=created) for c in containers],
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {"metadata": metadata, "spec": spec, "status": status}


def event(
    reason: str,
    message: str,
    *,
    pod_name: str,
    first: datetime,
    last: datetime | None = None,
    count: int = 1,
    type_: str = "Warning",
    namespace: str = "shop",
    kind: str = "Pod",
    container: str | None = None,
    series: bool = False,
) -> dict[str, Any]:
    """A core/v1 Event as the kubelet and controllers write them (first/lastTimestamp and count, no eventTime)."""
    involved: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": pod_name, "uid": str(uuid.uuid4()), "apiVersion": "v1"}
    if container:
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    if series:
        # As events.k8s.io/v1 writers leave them in core/v1: eventTime and a series, no first/lastTimestamp or count.
        return {
            "metadata": {"name": f"{pod_name}.{uuid.uuid4().hex[:16]}", "namespace": namespace, "creationTimestamp": stamp(first)},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "eventTime": nano(first).replace("000Z", "Z"),
            "series": {"count": count, "lastObservedTime": nano(last or first).replace("000Z", "Z")},
            "type": type_,
            "action": "Binding",
            "reportingComponent": "default-scheduler",
            "reportingInstance": "default-scheduler-control-plane",
        }
    return {
        "metadata": {"name": f"{pod_name}.{uuid.uuid4().hex[:16]}", "namespace": namespace, "creationTimestamp": stamp(first)},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "node-a"},
        "firstTimestamp": stamp(first),
        "lastTimestamp": stamp(last or first),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-a",
    }


def replicaset(
    deployment: str,
    *,
    revision: int,
    images: list[str],
    created: datetime,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ReplicaSet the Deployment controller made; `containers` (full specs) replace the one-per-image default."""
    template_hash = uuid.uuid4().hex[:10]
    labels = {**labels, "pod-template-hash": template_hash}
    containers = containers or [{"name": f"c{i}" if i else "app", "image": image} for i, image in enumerate(images)]
    return {
        "metadata": {
            "name": f"{deployment}-{template_hash}",
            "namespace": "shop",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": stamp(created),
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": "3",
                "deployment.kubernetes.io/max-replicas": "4",
                "deployment.kubernetes.io/revision": str(revision),
                **(annotations or {}),
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment,
                    "uid": str(uuid.uuid4()),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers, **({"volumes": volumes} if volumes else {})}},
        },
        "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 1},
    }


def deployment(name: str, *, labels: dict[str, str], revision: int, created: datetime) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": str(uuid.uuid4()),
            "creationTimestamp": stamp(created),
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "generation": revision,
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": f"registry.example.com/shop/{name}"}]},
            },
        },
        "status": {"replicas": 3, "readyReplicas": 3, "observedGeneration": revision},
    }


def node(name: str, conditions: list[tuple[str, str, str, str, datetime]]) -> dict[str, Any]:
    """A node with (type, status, reason, message, lastTransitionTime) conditions."""
    return {
        "metadata": {"name": name, "uid": str(uuid.uuid4()), "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": stamp(at), "lastHeartbeatTime": stamp(at)}
                for t, s, r, m, at in conditions
            ],
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "110"},
        },
    }


@dataclass
class LogLine:
    """One line of a container's log: the runtime's time (None: served without one) and the text the container wrote."""

    at: datetime | None
    text: str


@dataclass
class KubernetesStandin:
    namespace: str = "shop"
    token: str = "standin-token"
    # The server URL's path before /api (kubeconfig servers may carry one, e.g. behind a proxy).
    prefix: str = ""
    page_cap: int = 2
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (pod, container, previous) → lines; `endless` logs stream filler after their lines until the client leaves.
    logs: dict[tuple[str, str, bool], list[LogLine]] = field(default_factory=dict)
    endless: set[tuple[str, str, bool]] = field(default_factory=set)
    # Resources (`pods`, `pods/log`, `events`, `nodes`, `replicasets`) the service account may not read.
    forbidden: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    # Statuses to answer before serving (429 / 500), with their Retry-After.
    failures: list[tuple[int, int]] = field(default_factory=list)
    # Pods whose node's kubelet does not answer: their log reads get the API server's 500.
    dead_kubelets: set[str] = field(default_factory=set)
    # Seconds every answer waits before it is sent (an overloaded API server).
    delay_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoopbackServer | None = None

    def start(self) -> KubernetesStandin:
        self._server = LoopbackServer(self._handler(), name="standin-kubernetes")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.base_url + self.prefix

    def kubeconfig(self, path: Path, *, server: str | None = None, token: str | None = None) -> Path:
        """A kubeconfig naming this server and a bearer token, as `kubectl config view --raw` writes one."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": server or self.url}}],
            "users": [{"name": "incident-responder", "user": {"token": token or self.token}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "incident-responder", "namespace": self.namespace}}],
            "current-context": "standin",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config), encoding="utf-8")
        return path

    def add_log(self, pod_name: str, container: str, lines: list[LogLine], *, previous: bool = False, endless: bool = False) -> None:
        self.logs[(pod_name, container, previous)] = lines
        if endless:
            self.endless.add((pod_name, container, previous))

    # --- answers ---------------------------------------------------------------------------------

    def route(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """(status, headers, body) for a GET; a body that is an iterator of bytes is streamed chunked."""
        time.sleep(self.delay_s)
        with self._lock:
            self.requests.append(f"{path}?{'&'.join(f'{k}={v}' for k, v in sorted(query.items()))}")
            if self.failures:
                status, wait = self.failures.pop(0)
                return (
                    status,
                    {"Retry-After": str(wait)},
                    _status(status, "TooManyRequests" if status == 429 else "InternalError", "try again later"),
                )
        ns = re.escape(self.namespace)
        routes: list[tuple[str, str, str, Any]] = [
            (rf"/api/v1/namespaces/{ns}/pods", "pods", "PodList", lambda: self.pods),
            (rf"/api/v1/namespaces/{ns}/events", "events", "EventList", lambda: self.events),
            (rf"/apis/apps/v1/namespaces/{ns}/replicasets", "replicasets", "ReplicaSetList", lambda: self.replicasets),
            (rf"/apis/apps/v1/namespaces/{ns}/deployments", "deployments", "DeploymentList", lambda: self.deployments),
        ]
        for pattern, resource, list_kind, items in routes:
            if re.fullmatch(pattern, path):
                if resource in self.forbidden:
                    return _forbidden("list", resource, self.namespace)
                selected = [
                    item
                    for item in items()
                    if _selects(query.get("labelSelector", ""), item["metadata"].get("labels") or {})
                    and _fields_select(query.get("fieldSelector", ""), item)
                ]
                return 200, {}, self._page(list_kind, selected, query)
        if match := re.fullmatch(rf"/api/v1/namespaces/{ns}/pods/([^/]+)/log", path):
            if "pods/log" in self.forbidden:
                return _forbidden("get", "pods/log", self.namespace)
            return self._log(unquote(match.group(1)), query)
        if match := re.fullmatch(r"/api/v1/nodes/([^/]+)", path):
            if "nodes" in self.forbidden:
                return _forbidden("get", "nodes", None)
            found = self.nodes.get(unquote(match.group(1)))
            if found is None:
                return 404, {}, _status(404, "NotFound", f'nodes "{match.group(1)}" not found')
            return 200, {}, {"kind": "Node", "apiVersion": "v1", **found}
        if re.fullmatch(r"/api/v1/namespaces/[^/]+/.*", path):
            # Another namespace: RBAC grants this account one namespace only.
            return _forbidden("list", path.rsplit("/", 1)[-1], path.split("/")[4])
        return 404, {}, _status(404, "NotFound", "the server could not find the requested resource")

    def _page(self, list_kind: str, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        offset = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        size = min(int(query.get("limit") or 500), self.page_cap)
        page = items[offset : offset + size]
        metadata: dict[str, Any] = {"resourceVersion": "4242"}
        if offset + size < len(items):
            metadata["continue"] = base64.b64encode(str(offset + size).encode()).decode()
            metadata["remainingItemCount"] = len(items) - offset - size
        api = "apps/v1" if list_kind.startswith(("ReplicaSet", "Deployment")) else "v1"
        return {"kind": list_kind, "apiVersion": api, "metadata": metadata, "items": page}

    def _log(self, pod_name: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        known = next((p for p in self.pods if p["metadata"]["name"] == pod_name), None)
        if known is None:
            return 404, {}, _status(404, "NotFound", f'pods "{pod_name}" not found')
        container = query.get("container") or known["spec"]["containers"][0]["name"]
        if pod_name in self.dead_kubelets:
            message = (
                f'Get "https://10.0.3.7:10250/containerLogs/{self.namespace}/{pod_name}/{container}": dial tcp 10.0.3.7:10250: i/o timeout'
            )
            return 500, {}, _status(500, "InternalError", message)
        previous = query.get("previous", "").lower() == "true"
        key = (pod_name, container, previous)
        if key not in self.logs:
            if previous:
                message = f'previous terminated container "{container}" in pod "{pod_name}" not found'
                return 400, {}, _status(400, "BadRequest", message)
            return 200, {"Content-Type": "text/plain"}, iter([b""])
        lines = list(self.logs[key])
        if "sinceSeconds" in query:
            since = datetime.now(UTC) - timedelta(seconds=int(query["sinceSeconds"]))
            lines = [line for line in lines if line.at is None or line.at >= since]
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
        with_times = query.get("timestamps", "").lower() == "true"
        body = _log_body(lines, with_times, endless=key in self.endless)
        if "limitBytes" in query:
            body = _limited(body, int(query["limitBytes"]))
        return 200, {"Content-Type": "text/plain"}, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                path = parsed.path
                if standin.prefix and path.startswith(standin.prefix):
                    path = path[len(standin.prefix) :]
                if self.headers.get("Authorization") != f"Bearer {standin.token}":
                    self._json(401, {}, _status(401, "Unauthorized", "Unauthorized"))
                    return
                query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
                status, headers, body = standin.route(path, query)
                if isinstance(body, Iterator):
                    self._stream(status, headers, body)
                else:
                    self._json(status, headers, body)

            def _json(self, status: int, headers: dict[str, str], body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
                self.send_response(status)
                self.send_header("Transfer-Encoding", "chunked")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    for chunk in chunks:
                        if chunk:
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                            self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler


def _log_body(lines: list[LogLine], with_times: bool, *, endless: bool) -> Iterator[bytes]:
    for line in lines:
        prefix = f"{nano(line.at)} " if with_times and line.at is not None else ""
        yield f"{prefix}{line.text}\n".encode()
    if endless:
        later = datetime.now(UTC)
        for n in itertools.count():
            text = json.dumps({"level": "debug", "msg": f"filler {n}"})
            yield f"{nano(later) + ' ' if with_times else ''}{text}\n".encode() * 64


def _limited(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    sent = 0
    for chunk in chunks:
        if sent >= limit:
            return
        chunk = chunk[: limit - sent]
        sent += len(chunk)
        yield chunk


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def _forbidden(verb: str, resource: str, namespace: str | None) -> tuple[int, dict[str, str], Any]:
    group = "apps" if resource in ("replicasets", "deployments") else ""
    name, _, sub = resource.partition("/")
    subresource = f' subresource "{sub}"' if sub else ""
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = f'{name} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource "{name}"{subresource} in API group "{group}"{where}'
    return 403, {}, {**_status(403, "Forbidden", message), "details": {"kind": name}}


def _fields_select(selector: str, item: dict[str, Any]) -> bool:
    """`type=Warning,involvedObject.name=x`: dotted paths compared as strings, as field selectors are."""
    for requirement in filter(None, selector.split(",")):
        match = re.fullmatch(r"([\w.]+)(==|=|!=)(.*)", requirement)
        if match is None:
            return False
        path, op, value = match.groups()
        found: Any = item
        for part in path.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if (str(found if found is not None else "") == value) != (op != "!="):
            return False
    return True


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """Equality, set and existence requirements, comma-separated, as the API server reads a label selector."""
    for requirement in re.split(r",(?![^()]*\))", selector):
        requirement = requirement.strip()
        if not requirement:
            continue
        if match := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", requirement):
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if (op == "in") != (labels.get(key) in values):
                return False
        elif match := re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", requirement):
            key, op, value = match.groups()
            if (labels.get(key) == value) != (op != "!="):
                return False
        elif requirement.startswith("!"):
            if requirement[1:] in labels:
                return False
        elif requirement not in labels:
            return False
    return True
