"""One Kubernetes API server through the official client: credentials, calls with clear errors, paged lists, the pods of a selector.

Every call goes through `Cluster.once`, one attempt whose failures become a
`SourceError` a responder can act on: a 403 names the verb, resource and namespace
the role lacks (and the manifest that grants it), 429 and 5xx answers are
`RetryableError`s with the server's Retry-After. A `Reader` adds the read's
deadline and retries; the log source uses its store session instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from integrations.errors import SourceError
from integrations.infra.kubernetes import KubernetesTarget
from integrations.plugin import resolve_path
from integrations.remote_calls import Deadline, RetryableError, with_retries

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Pod

T = TypeVar("T")
# Items per list call: the API server's own pages are cheap at this size, and a namespace rarely needs more than a few.
PAGE = 250
RBAC_MANIFEST = "deploy/kubernetes/rbac.yaml"
_TROUBLED_WAITING = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CreateContainerError"}
)


class Caller(Protocol):
    """Runs one API call, given the per-request timeout, with the read's retries and deadline."""

    def __call__(self, fn: Callable[[float], T], *, what: str, verb: str, resource: str) -> T: ...


@dataclass(frozen=True, slots=True)
class PartFailure:
    """One part of a read that gave nothing (events, nodes, an empty selector), and why: a degraded entry beside the rest."""

    query: str
    reason: str


class Partial(list[T]):
    """What a read found, plus the parts that failed (the pipeline shows each failure as a degraded entry)."""

    def __init__(self, items: Iterable[T] = (), failures: Iterable[PartFailure] = ()) -> None:
        super().__init__(items)
        self.failures = list(failures)


class Cluster:
    """A connection to one API server, made on first use, for one namespace."""

    def __init__(self, options: KubernetesTarget, base_dir: Path) -> None:
        self.options = options
        self.namespace = options.namespace
        self.kubeconfig = resolve_path(options.kubeconfig, base_dir) if options.kubeconfig else None
        self._client: ApiClient | None = None
        self._server = ""
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """The cluster as a responder would find it: its server once known, else where its credentials come from."""
        if self._server:
            return f"kubernetes {self._server}"
        if self.options.in_cluster:
            return "kubernetes (in-cluster service account)"
        return f"kubernetes kubeconfig {self.kubeconfig or '(default)'}" + (
            f" context {self.options.context}" if self.options.context else ""
        )

    def describe(self) -> str:
        """The selector and namespace, and the cluster, without connecting."""
        return f"pods '{self.options.selector}' in namespace {self.namespace} ({self.where.removeprefix('kubernetes ')})"

    def client(self) -> ApiClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> ApiClient:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        try:
            if self.options.in_cluster:
                config.load_incluster_config(client_configuration=configuration)
            else:
                if self.kubeconfig is not None and not self.kubeconfig.is_file():
                    raise SourceError(f"{self.where}: the kubeconfig file does not exist")
                config.load_kube_config(
                    config_file=str(self.kubeconfig) if self.kubeconfig else None,
                    context=self.options.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
        except (ConfigException, OSError, ValueError) as exc:
            # The exception's text may quote the file's content: only its first line, which names what is missing.
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise SourceError(f"{self.where}: cannot load credentials ({first})") from None
        # Retries are ours (within the deadline, honouring Retry-After); False makes urllib3 raise the error itself, not a wrapper.
        configuration.retries = False
        self._server = configuration.host
        return client.ApiClient(configuration)

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.client())

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.client())

    def once(self, fn: Callable[[float], T], timeout: float, *, what: str, verb: str, resource: str, patient: bool = True) -> T:
        """`fn(timeout)`, one attempt; its failure as a SourceError (RetryableError when another try may help).

        Not `patient`: only a 429 is worth another try. A log read answered 5xx or timing out
        means the node's kubelet is unreachable, and retrying would spend the whole deadline on it.
        """
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(timeout)
        except ApiException as exc:
            error = self.api_error(exc, what=what, verb=verb, resource=resource)
            if isinstance(error, RetryableError) and not patient and getattr(exc, "status", None) != 429:
                error = SourceError(str(error))
            raise error from None
        except (urllib3.exceptions.NewConnectionError, ConnectionError) as exc:
            raise SourceError(f"{self.where}: cannot reach the API server ({_reason(exc)})") from None
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            kind = RetryableError if patient else SourceError
            raise kind(f"{self.where}: {what} timed out ({type(exc).__name__})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SourceError(f"{self.where}: cannot reach the API server ({_reason(exc)})") from None

    def api_error(self, exc: Any, *, what: str, verb: str, resource: str) -> SourceError:
        status = int(getattr(exc, "status", 0) or 0)
        message = _status_message(getattr(exc, "body", None)) or str(getattr(exc, "reason", "") or "")
        said = f": {message}" if message else ""
        if status == 401:
            return SourceError(f"{self.where}: the credentials were refused (401){said}")
        if status == 403:
            scope = "cluster-wide" if resource == "nodes" else f"in namespace {self.namespace}"
            return SourceError(
                # `is_forbidden` reads the "(403)".
                f"{self.where}: forbidden to {verb} {resource} {scope} (403): grant get, list and watch on {resource} "
                f"({RBAC_MANIFEST}){said}"
            )
        if status == 429 or status >= 500:
            return RetryableError(f"{self.where}: {what} answered {status}{said}", wait_s=_retry_after(getattr(exc, "headers", None)))
        return SourceError(f"{self.where}: {what} answered {status}{said}")


class Bounds(Protocol):
    @property
    def deadline_s(self) -> float: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def retries(self) -> int: ...


class Reader:
    """One read's calls: bounded by the read's deadline, retried on 429 and 5xx."""

    def __init__(self, cluster: Cluster, bounds: Bounds) -> None:
        self.cluster = cluster
        self.bounds = bounds
        self.deadline = Deadline(bounds.deadline_s)

    def __call__(self, fn: Callable[[float], T], *, what: str, verb: str, resource: str) -> T:
        def attempt() -> T:
            return self.cluster.once(fn, self.deadline.timeout(self.bounds.timeout_s), what=what, verb=verb, resource=resource)

        return with_retries(attempt, retries=self.bounds.retries, deadline=self.deadline)


def list_all(call: Caller, lister: Callable[..., Any], *, what: str, resource: str, limit: int, **query: Any) -> Iterator[Any]:
    """Every item of a list call, page by page (`limit` and `continue`), at most `limit` items."""
    token: str | None = None
    seen = 0
    while True:
        size = min(PAGE, limit - seen)
        kwargs = {**query, "limit": size, **({"_continue": token} if token else {})}
        page = call(partial(_list_page, lister, kwargs), what=what, verb="list", resource=resource)
        for item in page.items or ():
            yield item
            seen += 1
        token = getattr(page.metadata, "_continue", None)
        if not token or seen >= limit:
            return


def select_pods(cluster: Cluster, call: Caller, max_pods: int) -> tuple[list[V1Pod], int]:
    """The selector's pods, the troubled ones first and then the newest, at most `max_pods`; and how many matched."""
    pods = list(
        list_all(
            call,
            cluster.core().list_namespaced_pod,
            what=f"listing pods '{cluster.options.selector}'",
            resource="pods",
            limit=max(max_pods * 20, 1000),
            namespace=cluster.namespace,
            label_selector=cluster.options.selector,
        )
    )
    pods.sort(key=lambda pod: (not troubled(pod), -_created(pod), pod.metadata.name))
    return pods[:max_pods], len(pods)


def list_replicasets(cluster: Cluster, call: Caller, limit: int) -> list[Any]:
    """The selector's ReplicaSets: a Deployment's pods carry its template's labels, and so do its ReplicaSets."""
    return list(
        list_all(
            call,
            cluster.apps().list_namespaced_replica_set,
            what=f"listing ReplicaSets '{cluster.options.selector}'",
            resource="replicasets",
            limit=limit,
            namespace=cluster.namespace,
            label_selector=cluster.options.selector,
        )
    )


def troubled(pod: V1Pod) -> bool:
    status = pod.status
    if status is None:
        return False
    if status.phase not in ("Running", "Succeeded"):
        return True
    for container in [*(status.container_statuses or ()), *(status.init_container_statuses or ())]:
        waiting = container.state.waiting if container.state else None
        if container.restart_count or (waiting is not None and waiting.reason in _TROUBLED_WAITING):
            return True
    return False


def is_forbidden(error: SourceError) -> bool:
    """Whether RBAC refused the call (the messages `api_error` writes say so, however a caller re-words them)."""
    return "(403)" in str(error)


def is_missing(error: SourceError) -> bool:
    return "answered 404" in str(error)


def owners(pod: V1Pod) -> list[str]:
    return [ref.name for ref in pod.metadata.owner_references or () if ref.controller]


def _list_page(lister: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    return lister(_request_timeout=timeout, **kwargs)


def utc(moment: datetime | None) -> datetime | None:
    """A time from the client in UTC; the client parses the API's RFC 3339 times with their zone, this only makes sure."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _created(pod: V1Pod) -> float:
    created: datetime | None = pod.metadata.creation_timestamp
    return created.timestamp() if created else 0.0


def _status_message(body: Any) -> str:
    """The `message` of the Status object an API error carries, on one line."""
    if not body:
        return ""
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return ""
    message = status.get("message", "") if isinstance(status, dict) else ""
    return " ".join(str(message).split())[:300]


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None) or exc
    text = str(inner)
    # urllib3 wraps the socket error in text that repeats the pool object; the errno text is what a responder needs.
    if "Errno" in text:
        text = text[text.index("[Errno") :].rstrip(")'\"")
    return " ".join(text.split())[:200] or type(exc).__name__
