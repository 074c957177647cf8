"""What the log statistics read of one event: signature text, access line or not, origin, deploy marker.

The origin is where the event came from and which services it names; a deploy marker is
the build a start-up line announces. Only the event's typed fields are read; which keys a source spells them with is the
parsers' business (`integrations.logs.parsing.fields`).
"""

from __future__ import annotations

import re

from integrations.logs.base import LogEvent

MAX_TEXT_CHARS = 700
# Error text beyond this adds nothing to a signature that the message has not said.
MAX_ERROR_CHARS = 300

_MARKER = re.compile(
    r"\b(?:version|build|revision|release|commit|sha|git_sha|image)\b[\s:=\"']+"
    r"(?P<version>v?\d+\.\d+(?:\.\d+)?(?:[-+.][\w.]+)?|[0-9a-f]{7,40})(?:\s*\((?P<sha>[0-9a-f]{7,40})\))?",
    re.IGNORECASE,
)
_IMAGE_TAG = re.compile(r"image \"?[\w./-]+:(?P<version>[\w.-]+)\"?", re.IGNORECASE)
_STARTING = re.compile(r"\bstart(?:ing|ed)\s+(?P<service>[a-z][\w-]{2,})\s+(?:version|build|v\d)", re.IGNORECASE)
_POD_SUFFIX = re.compile(r"^(?P<name>[a-z][a-z0-9-]*?)(?:-[a-z0-9]{6,10})?-[a-z0-9]{5}$")


def service_of_pod(pod: str) -> str:
    """The workload a Kubernetes pod belongs to: `checkout-7d9f8b6c5-x2k4q` → `checkout`."""
    match = _POD_SUFFIX.match(pod)
    return match.group("name") if match else pod


def signature_text(event: LogEvent) -> str:
    """The message plus whatever error text the event carries in its error text or an exception line."""
    text = event.message or event.raw.split("\n", 1)[0]
    error = event.error_text
    if error and error not in text:
        text = f"{text} | {error[:MAX_ERROR_CHARS]}"
    if event.exception and event.exception not in text:
        text = f"{text} | {event.exception}"
    return text[:MAX_TEXT_CHARS]


def is_access(event: LogEvent) -> bool:
    """An access-log line: a request and its status, with no error text of its own."""
    return event.method is not None and event.status is not None and not event.error_text and not event.exception


def _pod(event: LogEvent) -> str | None:
    # In Kubernetes a container's host name is its pod's name.
    return event.pod or event.host


def origin(event: LogEvent) -> tuple[tuple[str, ...], str | None, str | None] | None:
    """The services the event names, and the service and pod it came from; None when it states none of them."""
    pod = _pod(event)
    service = event.service
    if service is None and pod is not None:
        service = service_of_pod(pod)
    if event.peers or service is not None or pod is not None:
        return event.peers, service, pod
    return None


def deploy_marker(event: LogEvent) -> tuple[str, str | None, str, str] | None:
    """(version, sha, service, pod) when the event is a start-up line naming the build it runs."""
    message = event.message
    if event.version is not None:
        message = f"{message} version {event.version}"
    if not ("ersion" in message or "uild" in message or "evision" in message or "mage" in message or "elease" in message):
        return None
    match = _MARKER.search(message) or _IMAGE_TAG.search(message)
    if match is None:
        return None
    pod = _pod(event) or ""
    service = event.service
    if service is None:
        named = _STARTING.search(event.message)
        service = named.group("service") if named else service_of_pod(pod) if pod else ""
    return match.group("version"), match.groupdict().get("sha"), service, pod
