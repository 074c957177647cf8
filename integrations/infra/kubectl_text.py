"""Reading what `kubectl` printed: describe output, event tables and lists, pod objects, into facts.

Engineers paste what they ran. `kubectl describe` and `kubectl get events` print ages
relative to when they ran ("3m", "12m (x5 over 3h)"); those become times only against
an anchor (the dump's capture time); without one a relative time stays unknown. Absolute
times (Start Time, Started, Finished, the timestamps of `-o yaml/json`) are always read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import yaml

from core.timeparse import parse_iso
from integrations.infra.base import InfraFact

_AGE_PART = re.compile(r"(\d+)([smhd])")
_AGE = re.compile(r"^(?:\d+[smhd])+$")
# "12m (x5 over 3h)", "2m", "<unknown>", "<invalid>"
_EVENT_AGE = re.compile(r"^(?P<last>(?:\d+[smhd])+|<unknown>|<invalid>)(?:\s+\(x(?P<count>\d+) over (?P<first>(?:\d+[smhd])+)\))?")
_KEY_VALUE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w ./()-]*?):(?:\s+(?P<value>.*))?$")
_CAPTURED = re.compile(r"^\s*(?:#|//)?\s*(?:captured|collected|dumped|taken|saved)(?: at| on)?\s*[:=]?\s*(?P<at>\S.*)$", re.IGNORECASE)
_DATE_OUTPUT = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} (?:UTC|GMT) \d{4}$")
_EVENT_HEADER = re.compile(r"^(?:NAMESPACE\s+)?LAST SEEN\s+TYPE\s+REASON\s+OBJECT\b")
_DESCRIBE_EVENTS_HEADER = re.compile(r"^\s+Type\s+Reason\s+Age\s+From\s+Message\s*$")
_NOT_FOUND = re.compile(r"not found|couldn't find key|does not exist|no such key", re.IGNORECASE)
_PRESSURE_CONDITIONS = frozenset({"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"})


def parse_age(text: str) -> timedelta | None:
    """kubectl's short ages ("3m12s", "2d4h", "45s") as a duration; None for "<unknown>"."""
    text = text.strip()
    if not _AGE.match(text):
        return None
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=sum(int(n) * seconds[unit] for n, unit in _AGE_PART.findall(text)))


def parse_time(text: str) -> datetime | None:
    """A time as kubectl prints it: RFC 1123 in describe output, RFC 3339 in objects, `date` output; UTC."""
    text = text.strip().strip("'\"")
    if not text or text.startswith("<"):
        return None
    try:
        return parse_iso(text)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        moment = None
    if moment is None and _DATE_OUTPUT.match(text):
        moment = datetime.strptime(text.replace("GMT", "UTC"), "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=UTC)
    if moment is None or moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def captured_at(text: str) -> datetime | None:
    """The time a dump says it was taken: a `# captured at ...` line or `date` output near its top."""
    for line in text.splitlines()[:8]:
        match = _CAPTURED.match(line)
        candidate = match.group("at") if match else line.strip()
        if (moment := parse_time(candidate)) is not None and (match or _DATE_OUTPUT.match(line.strip())):
            return moment
    return None


@dataclass(slots=True)
class _Node:
    key: str
    value: str
    indent: int
    children: list[_Node] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def child(self, key: str) -> _Node | None:
        return next((c for c in self.children if c.key == key), None)

    def get(self, key: str) -> str:
        found = self.child(key)
        return found.value if found is not None else ""


def _tree(lines: list[str]) -> _Node:
    """Describe output as a tree by indentation; lines that are not `Key: value` stay with the entry above."""
    root = _Node("", "", -1)
    stack = [root]
    for line in lines:
        if not line.strip():
            continue
        match = _KEY_VALUE.match(line)
        indent = len(line) - len(line.lstrip(" "))
        if match is None or "  " in match.group("key"):
            stack[-1].lines.append(line)
            continue
        while len(stack) > 1 and stack[-1].indent >= indent:
            stack.pop()
        node = _Node(match.group("key").strip(), (match.group("value") or "").strip(), indent)
        stack[-1].children.append(node)
        stack.append(node)
    return root


def _columns(header: str) -> list[tuple[str, int]]:
    """Column names and start offsets of a kubectl table header (columns are two or more spaces apart)."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]


def _row(line: str, columns: list[tuple[str, int]]) -> dict[str, str]:
    row: dict[str, str] = {}
    for index, (name, start) in enumerate(columns):
        end = columns[index + 1][1] if index + 1 < len(columns) else None
        row[name] = line[start:end].strip() if end is not None else line[start:].strip()
    return row


def _event_row_split(line: str, columns: list[tuple[str, int]]) -> dict[str, str]:
    """A row by its cells (two or more spaces apart) when it does not line up with the header."""
    cells = re.split(r"\s{2,}", line.strip(), maxsplit=len(columns) - 1)
    return dict(zip([name for name, _ in columns], cells, strict=False))


class FactReader:
    """Facts from the texts of one dump, relative ages anchored on `anchor` when there is one."""

    def __init__(self, source: str, anchor: datetime | None) -> None:
        self.source = source
        self.anchor = anchor
        self.facts: list[InfraFact] = []

    def ago(self, age: str) -> datetime | None:
        delta = parse_age(age)
        return self.anchor - delta if delta is not None and self.anchor is not None else None

    def add(self, kind: str, subject: str, detail: str, **more: Any) -> None:
        attributes = {k: str(v) for k, v in (more.pop("attributes", None) or {}).items() if v not in (None, "")}
        self.facts.append(InfraFact(kind=kind, subject=subject, detail=detail[:400], source=self.source, attributes=attributes, **more))

    # -- what a text is ---------------------------------------------------------------------------------------

    def read(self, text: str) -> None:
        stripped = text.lstrip()
        if stripped.startswith(("{", "[")):
            try:
                self.read_objects(json.loads(stripped))
                return
            except ValueError:
                pass
        if re.search(r"^(?:apiVersion|kind|items):", text, re.MULTILINE) and not re.search(r"^Name:\s", text, re.MULTILINE):
            try:
                for document in yaml.safe_load_all(text):
                    self.read_objects(document)
                return
            except yaml.YAMLError:
                pass
        lines = text.splitlines()
        for start, end in _sections(lines):
            block = lines[start:end]
            if _EVENT_HEADER.match(block[0]):
                self.read_event_table(block)
            elif block[0].startswith("Name:"):
                self.read_describe(block)

    # -- kubectl get events (table) ---------------------------------------------------------------------------

    def read_event_table(self, lines: list[str]) -> None:
        columns = _columns(lines[0])
        names = [name for name, _ in columns]
        for line in lines[1:]:
            if not line.strip():
                continue
            row = _row(line, columns)
            if row.get("TYPE") not in ("Normal", "Warning"):
                row = _event_row_split(line, columns)
            last = self.ago(row.get("LAST SEEN", ""))
            # Without `-o wide` the table gives only when an event was last seen: when it began stays unknown.
            first = self.ago(row["FIRST SEEN"]) if "FIRST SEEN" in names else None
            count = int(row["COUNT"]) if row.get("COUNT", "").isdigit() else 1
            self.event(row.get("TYPE", ""), row.get("REASON", ""), row.get("OBJECT", ""), row.get("MESSAGE", ""), first, last, count)

    # -- kubectl describe ----------------------------------------------------------------------------------------

    def read_describe(self, lines: list[str]) -> None:
        events_at = next((i for i, line in enumerate(lines) if line.startswith("Events:")), len(lines))
        tree = _tree(lines[:events_at])
        name = tree.get("Name")
        if tree.child("Containers") is not None and tree.child("Node") is not None:
            obj = f"pod/{name}"
            self.describe_pod(tree, name)
        elif tree.child("Replicas") is not None and tree.child("StrategyType") is not None:
            obj = f"deployment/{name}"
            self.describe_deployment(tree, name, lines[events_at:])
        elif tree.child("Capacity") is not None or tree.child("Taints") is not None:
            obj = f"node/{name}"
            self.describe_node(tree, name, lines[:events_at])
        else:
            obj = name
        self.describe_events(lines[events_at:], obj)

    def describe_pod(self, tree: _Node, pod: str) -> None:
        containers = tree.child("Containers")
        for container in containers.children if containers is not None else []:
            subject = f"{pod}/{container.key}"
            restarts = int(container.get("Restart Count") or 0)
            self.container_state(subject, container.child("State"), restarts, current=True)
            self.container_state(subject, container.child("Last State"), restarts, current=False)
            limits = container.child("Limits")
            if limits is not None and limits.children:
                shown = ", ".join(f"{c.key} {c.value}" for c in limits.children)
                self.add("resource_limits", subject, f"limits {shown}", attributes={f"limit_{c.key}": c.value for c in limits.children})
            if restarts:
                self.add("restarts", subject, f"restarted {restarts} times", count=restarts)
        started = parse_time(tree.get("Start Time"))
        if tree.get("Status") == "Failed" and tree.get("Reason") == "Evicted":
            self.add("evicted", f"{pod}", tree.get("Message") or "pod evicted", reason="Evicted", at=started)

    def container_state(self, subject: str, state: _Node | None, restarts: int, *, current: bool) -> None:
        if state is None or not state.value:
            return
        reason = state.get("Reason")
        message = state.get("Message")
        exit_code = int(state.get("Exit Code")) if state.get("Exit Code").lstrip("-").isdigit() else None
        started, finished = parse_time(state.get("Started")), parse_time(state.get("Finished"))
        attributes = {"state": state.value, "started": state.get("Started"), "finished": state.get("Finished")}
        if state.value == "Waiting" and reason:
            kind = _waiting_kind(reason)
            if kind is not None:
                detail = f"waiting: {reason}" + (f": {message}" if message else "") + (f"; restarted {restarts} times" if restarts else "")
                self.add(kind, subject, detail, reason=reason, attributes=attributes)
        elif state.value == "Terminated" and (reason not in ("Completed", "") or (exit_code or 0) != 0):
            code = f" (exit code {exit_code})" if exit_code is not None else ""
            detail = f"{'terminated' if current else 'last terminated'}: {reason or 'Error'}{code}" + (f": {message}" if message else "")
            if restarts:
                detail += f"; restarted {restarts} times"
            kind = "oom_killed" if reason == "OOMKilled" else "container_error"
            self.add(
                kind,
                subject,
                detail,
                at=finished,
                reason=reason or "Error",
                exit_code=exit_code,
                count=max(restarts, 1),
                attributes={**attributes, "previous": "" if current else "true"},
            )
        elif state.value == "Running" and started is not None and restarts:
            self.add("restarts", subject, f"running again since {started:%H:%M:%S} UTC", at=started, attributes=attributes)

    def describe_deployment(self, tree: _Node, name: str, events: list[str]) -> None:
        revision = ""
        annotations = tree.child("Annotations")
        texts = [tree.get("Annotations"), *(f"{c.key}: {c.value}" for c in (annotations.children if annotations else []))]
        for text in texts:
            if (m := re.search(r"deployment\.kubernetes\.io/revision[:=]\s*(\d+)", text)) is not None:
                revision = m.group(1)
        new_rs = tree.get("NewReplicaSet").split(" ")[0]
        images = [m.group(1) for line in _flatten(tree) if (m := re.match(r"\s*Image:\s+(\S+)", line))]
        # The rollout began when the new replica set was first scaled up.
        starts = [
            first
            for _, reason, message, first, _, _ in self.describe_rows(events)
            if reason == "ScalingReplicaSet" and new_rs and f"replica set {new_rs} " in f"{message} " and "Scaled up" in message
        ]
        at = min((s for s in starts if s is not None), default=None)
        detail = f"rollout to replica set {new_rs or '?'}" + (f", revision {revision}" if revision else "")
        detail += f", image {', '.join(images)}" if images else ""
        if replicas := tree.get("Replicas"):
            detail += f" ({replicas})"
        attributes = {"revision": revision, "image": ",".join(images), "replica_set": new_rs}
        self.add("rollout", f"deployment/{name}", detail, at=at, reason="ScalingReplicaSet", attributes=attributes)

    def describe_node(self, tree: _Node, name: str, lines: list[str]) -> None:
        start = next((i for i, line in enumerate(lines) if line.startswith("Conditions:")), None)
        if start is not None:
            header = lines[start + 1]
            columns = _columns(header)
            for line in lines[start + 2 :]:
                if not line.startswith(" ") or not line.strip():
                    break
                if line.strip().startswith("----"):
                    continue
                row = _row(line, columns)
                kind, status = row.get("Type", ""), row.get("Status", "")
                failing = (kind == "Ready" and status != "True") or (kind in _PRESSURE_CONDITIONS and status == "True")
                if failing:
                    at = parse_time(row.get("LastTransitionTime", ""))
                    reason = row.get("Reason") or kind
                    self.add("node_condition", f"node/{name}", f"{kind}={status}: {row.get('Message', '')}".strip(), at=at, reason=reason)
        taints = tree.get("Taints")
        if taints and taints != "<none>" and re.search(r"unreachable|not-ready|pressure", taints):
            self.add("node_condition", f"node/{name}", f"taint {taints}", reason="Taint")

    def describe_rows(self, lines: list[str]) -> Iterator[tuple[str, str, str, datetime | None, datetime | None, int]]:
        """The Events table of a describe output: type, reason, message, first and last seen, count."""
        if len(lines) < 2 or not _DESCRIBE_EVENTS_HEADER.match(lines[1]):
            return
        columns = _columns(lines[1])
        for line in lines[2:]:
            if not line.strip() or line.strip().startswith("----"):
                continue
            row = _row(line, columns)
            if row.get("Type") not in ("Normal", "Warning"):
                row = _event_row_split(line, columns)
            age = _EVENT_AGE.match(row.get("Age", ""))
            last = self.ago(age.group("last")) if age else None
            first = self.ago(age.group("first")) if age and age.group("first") else last
            count = int(age.group("count")) if age and age.group("count") else 1
            yield row.get("Type", ""), row.get("Reason", ""), row.get("Message", ""), first, last, count

    def describe_events(self, lines: list[str], obj: str) -> None:
        for type_, reason, message, first, last, count in self.describe_rows(lines):
            if obj.startswith("deployment/") and reason == "ScalingReplicaSet":
                continue  # the deployment's rollout fact says it once
            self.event(type_, reason, obj, message, first, last, count)

    # -- objects: -o yaml / -o json ----------------------------------------------------------------------------

    def read_objects(self, document: Any) -> None:
        if isinstance(document, list):
            for item in document:
                self.read_objects(item)
            return
        if not isinstance(document, dict):
            return
        kind = document.get("kind", "")
        if isinstance(document.get("items"), list):
            self.read_objects(document["items"])
        elif kind == "Event" or ("reason" in document and ("involvedObject" in document or "regarding" in document)):
            self.event_object(document)
        elif kind == "Pod":
            self.pod_object(document)

    def event_object(self, event: dict[str, Any]) -> None:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        obj = f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}".strip("/")
        series = event.get("series") or {}
        first = _object_time(event.get("firstTimestamp") or event.get("deprecatedFirstTimestamp") or event.get("eventTime"))
        last = _object_time(
            series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("deprecatedLastTimestamp") or event.get("eventTime")
        )
        count = int(series.get("count") or event.get("count") or event.get("deprecatedCount") or 1)
        message = str(event.get("message") or event.get("note") or "")
        self.event(str(event.get("type", "")), str(event.get("reason", "")), obj, message, first or last, last, count)

    def pod_object(self, pod: dict[str, Any]) -> None:
        name = str((pod.get("metadata") or {}).get("name", ""))
        status = pod.get("status") or {}
        limits = {c.get("name"): (c.get("resources") or {}).get("limits") or {} for c in (pod.get("spec") or {}).get("containers") or []}
        for container in status.get("containerStatuses") or []:
            subject = f"{name}/{container.get('name', '')}"
            restarts = int(container.get("restartCount") or 0)
            for key, current in (("state", True), ("lastState", False)):
                state = container.get(key) or {}
                for value, body in state.items():
                    node = _Node("State", value.capitalize(), 0)
                    for field_name, text in (
                        ("Reason", body.get("reason")),
                        ("Message", body.get("message")),
                        ("Exit Code", body.get("exitCode")),
                        ("Started", body.get("startedAt")),
                        ("Finished", body.get("finishedAt")),
                    ):
                        if text is not None:
                            node.children.append(_Node(field_name, str(text), 2))
                    self.container_state(subject, node, restarts, current=current)
            if limits.get(container.get("name")):
                shown = ", ".join(f"{k} {v}" for k, v in limits[container.get("name")].items())
                self.add(
                    "resource_limits",
                    subject,
                    f"limits {shown}",
                    attributes={f"limit_{k}": v for k, v in limits[container.get("name")].items()},
                )
            if restarts:
                self.add("restarts", subject, f"restarted {restarts} times", count=restarts)
        if status.get("reason") == "Evicted":
            self.add("evicted", name, str(status.get("message") or "pod evicted"), reason="Evicted")

    # -- one event, whatever its form ----------------------------------------------------------------------------

    def event(self, type_: str, reason: str, obj: str, message: str, first: datetime | None, last: datetime | None, count: int) -> None:
        kind = _event_kind(type_, reason, message)
        if kind is None:
            return
        subject = obj.split("/", 1)[1] if obj.startswith("pod/") else obj
        self.add(kind, subject, message or reason, at=first, last_at=last, count=max(count, 1), reason=reason)


def _flatten(node: _Node) -> Iterator[str]:
    for child in node.children:
        yield " " * child.indent + f"{child.key}: {child.value}"
        yield from child.lines
        yield from _flatten(child)


def _sections(lines: list[str]) -> Iterator[tuple[int, int]]:
    """Where each describe document or event table starts and ends in a text holding several."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Name:") or _EVENT_HEADER.match(line)]
    for index, start in enumerate(starts):
        yield start, starts[index + 1] if index + 1 < len(starts) else len(lines)


def _object_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(str(value)) if value else None


def _waiting_kind(reason: str) -> str | None:
    if reason == "CrashLoopBackOff":
        return "crash_loop"
    if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return "image_pull"
    if reason == "CreateContainerConfigError":
        return "config_error"
    if reason in ("CreateContainerError", "RunContainerError"):
        return "container_error"
    return None


def _event_kind(type_: str, reason: str, message: str) -> str | None:
    """The fact an event states; Normal events only for rollouts and OOM kills the kubelet reports."""
    if reason == "ScalingReplicaSet":
        return "rollout"
    if reason in ("OOMKilling", "OOMKilled"):
        return "oom_killed"
    if type_ != "Warning":
        return None
    lowered = message.lower()
    if reason == "BackOff":
        return "image_pull" if "pulling image" in lowered else "crash_loop"
    if reason == "Unhealthy":
        return "probe_failed"
    if reason == "FailedScheduling":
        return "unschedulable"
    if reason in ("FailedMount", "FailedAttachVolume"):
        return "mount_failed"
    if reason in ("Evicted", "Evicting") or reason.startswith("Evict"):
        return "evicted"
    if reason in ("NodeNotReady", "NodeHasDiskPressure", "NodeHasMemoryPressure", "NodeHasPIDPressure", "NetworkNotReady", "Rebooted"):
        return "node_condition"
    if reason in ("Failed", "ErrImagePull", "InspectFailed") or reason.startswith("Failed"):
        if "imagepull" in lowered or "pull image" in lowered or "errimagepull" in lowered or "manifest unknown" in lowered:
            return "image_pull"
        if "createcontainerconfigerror" in lowered or (
            _NOT_FOUND.search(message) and ("secret" in lowered or "configmap" in lowered or "key" in lowered)
        ):
            return "config_error"
        return "container_error"
    if reason == "CPUThrottlingHigh":
        return "cpu_throttled"
    if "dns" in reason.lower():
        return "dns_failure"
    if "networkpolicy" in reason.lower() or ("policy" in lowered and "denied" in lowered):
        return "network_policy"
    return None
