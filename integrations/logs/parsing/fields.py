"""The typed fields of a `LogEvent`, read from the structured keys its source gave.

This is the one place that knows which keys name a status, a duration, a pod or an
error, and in how many spellings. The parsers hand it the attributes of each line
(a JSON object, logfmt pairs, the fields of a known text format); a source that
receives its events as documents (Loki, Elasticsearch, CloudWatch) hands it those.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from integrations.logs.base import LogEvent

STATUS_KEYS: Final = ("status", "status_code", "statusCode", "http_status", "response_code", "code")
DURATION_MS_KEYS: Final = ("duration_ms", "responseTime", "response_time_ms", "latency_ms", "elapsed_ms", "took_ms")
DURATION_S_KEYS: Final = ("request_time", "duration_s", "upstream_response_time")
# Their numbers say no unit, so only a value that names one counts: `350ms`, `1.5s`, `1m2s` as Go prints them.
DURATION_UNIT_KEYS: Final = ("latency", "elapsed", "duration", "took")
# Keys whose text says what went wrong.
ERROR_KEYS: Final = ("error", "err", "body", "reason", "exception", "error_message", "detail", "cause", "error_description")
ERROR_TYPE_KEYS: Final = ("error.type", "error_type", "exception.type")
METHOD_KEYS: Final = ("method", "http.method", "http.request.method")
# Besides these, a `kubernetes` object names the pod, and `host` and `service` objects the host and service (ECS).
POD_KEYS: Final = ("pod", "pod_name", "kubernetes_pod_name", "k8s_pod", "kubernetes.pod_name", "kubernetes.pod.name")
HOST_KEYS: Final = ("hostname", "host.name", "host.hostname")
SERVICE_KEYS: Final = ("service", "service.name", "service_name")
TRACE_KEYS: Final = ("trace_id", "traceId", "trace.id")
VERSION_KEYS: Final = ("version",)
# Keys naming another service the event is about: what it called, what it waited on.
PEER_KEYS: Final = ("dependency", "upstream", "peer", "peer_service", "target", "host", "server", "db", "remote_service")
# Longer values are prose or URLs with queries, not the name of a service.
MAX_PEER_CHARS: Final = 120
# An error text may be as long as a message.
MAX_ERROR_CHARS: Final = 2 * 1024

_GO_DURATION: Final = re.compile(r"(?:\d{1,15}(?:\.\d{1,15})?(?:ns|us|µs|μs|ms|s|m|h)){1,6}")
_GO_PART: Final = re.compile(r"(\d{1,15}(?:\.\d{1,15})?)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_MS: Final = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}


def _status(value: object) -> int | None:
    if isinstance(value, int) and 100 <= value <= 599:
        return value
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _response_status(value: object) -> int | None:
    """pino and bunyan nest the response: `"res": {"statusCode": 200}`."""
    if isinstance(value, dict):
        status = value.get("statusCode") or value.get("status")
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def _milliseconds(value: object) -> float | None:
    """A finite number, or a string that spells one (logfmt and label stores give only strings)."""
    if type(value) is float:
        number = value
    elif type(value) is int or type(value) is str:
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
    else:
        return None
    # NaN and infinities would poison every sum they join.
    return number if number - number == 0 else None


def _seconds(value: object) -> float | None:
    seconds = _milliseconds(value)
    return seconds * 1000.0 if seconds is not None else None


def _go_duration(value: object) -> float | None:
    if isinstance(value, str) and _GO_DURATION.fullmatch(value) is not None:
        return sum(float(number) * _GO_UNIT_MS[unit] for number, unit in _GO_PART.findall(value))
    return None


def _error_kind(value: object) -> str | None:
    """The type of an error given as an object, the shape pino, ECS and most structured loggers use."""
    if isinstance(value, dict):
        kind = value.get("type") or value.get("name") or value.get("kind")
        if isinstance(kind, str) and kind:
            return kind
    return None


def _nested(inner: str) -> Callable[[object], str | None]:
    def read(value: object) -> str | None:
        name = value.get(inner) if isinstance(value, dict) else None
        return name if isinstance(name, str) and name else None

    return read


def _text_or_nested(inner: str) -> Callable[[object], str | None]:
    nested = _nested(inner)

    def read(value: object) -> str | None:
        return value if isinstance(value, str) and value else nested(value)

    return read


def _trace_id(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    # Datadog writes its trace ids as integers.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


# A key's value becomes a typed field through its converter (None when the value is unusable);
# a key without one gives a non-empty string as it is.
Convert = Callable[[Any], Any] | None
# Each typed field read from one key, the first usable: its keys in order of preference.
_FIRST_OF: Final[tuple[tuple[str, tuple[tuple[str, Convert], ...]], ...]] = (
    ("status", (*((key, _status) for key in STATUS_KEYS), ("res", _response_status))),
    (
        "duration_ms",
        (
            *((key, _milliseconds) for key in DURATION_MS_KEYS),
            *((key, _seconds) for key in DURATION_S_KEYS),
            *((key, _go_duration) for key in DURATION_UNIT_KEYS),
        ),
    ),
    ("error_type", (*((key, _error_kind) for key in ERROR_KEYS), *((key, None) for key in ERROR_TYPE_KEYS))),
    ("method", tuple((key, None) for key in METHOD_KEYS)),
    # fluentd and fluent-bit nest the pod in `kubernetes`.
    ("pod", (*((key, None) for key in POD_KEYS), ("kubernetes", _nested("pod_name")))),
    # A string `host` is more often the host a request went to (a peer, below) than the machine; ECS nests the machine in it.
    ("host", (*((key, None) for key in HOST_KEYS), ("host", _nested("name")))),
    ("service", tuple((key, _text_or_nested("name") if key == "service" else None) for key in SERVICE_KEYS)),
    ("trace_id", tuple((key, _trace_id) for key in TRACE_KEYS)),
    ("version", tuple((key, None) for key in VERSION_KEYS)),
)
_KNOWN: Final = frozenset({key for _, keys in _FIRST_OF for key, _ in keys} | set(ERROR_KEYS) | set(PEER_KEYS))
# For one set of keys: (field, key, converter) with each field's preferred key last, so that it
# is the one that stays; then the error keys and the peer keys present.
Plan = tuple[tuple[tuple[str, str, Convert], ...], tuple[str, ...], tuple[str, ...]]
# Lines of one logger carry the same keys, so matching keys to fields is done once per set of keys.
_PLANS: dict[frozenset[str], Plan] = {}
_MAX_PLANS: Final = 4096


def read_fields(event: LogEvent, attributes: Mapping[str, Any]) -> None:
    """Set the event's typed fields from `attributes`, leaving those it names nothing for as they are."""
    # Intersecting key sets runs in C; most events carry few of these keys, many none.
    present = _KNOWN.intersection(attributes)
    if not present:
        return
    plan = _PLANS.get(present)
    if plan is None:
        plan = _plan(present)
    readers, error_keys, peer_keys = plan
    for name, key, convert in readers:
        value = attributes[key]
        if convert is None:
            if type(value) is str and value:
                setattr(event, name, value)
        elif (value := convert(value)) is not None:
            setattr(event, name, value)
    if error_keys and (text := _error_text(attributes, error_keys)) is not None:
        event.error_text = text
    if peer_keys and (peers := _peers(attributes, peer_keys)):
        event.peers = peers


def _plan(present: frozenset[str]) -> Plan:
    readers = tuple((name, key, convert) for name, keys in _FIRST_OF for key, convert in reversed(keys) if key in present)
    plan = (readers, tuple(k for k in ERROR_KEYS if k in present), tuple(k for k in PEER_KEYS if k in present))
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[present] = plan
    return plan


def _error_text(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    """The distinct texts of the error keys, joined by ` | `."""
    texts: list[str] = []
    for key in keys:
        value = attributes[key]
        if isinstance(value, dict):
            value = value.get("message") or value.get("msg") or value.get("type")
        if isinstance(value, str) and value:
            value = value[:MAX_ERROR_CHARS]
            if value not in texts:
                texts.append(value)
    if len(texts) > 1:
        return " | ".join(texts)[:MAX_ERROR_CHARS]
    return texts[0] if texts else None


def _peers(attributes: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for key in keys if isinstance(v := attributes[key], str) and 0 < len(v) < MAX_PEER_CHARS)
