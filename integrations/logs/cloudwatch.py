"""The `cloudwatch` log kind: CloudWatch Logs read through boto3, `filter_log_events` page by page, or a Logs Insights query.

`filter_log_events` is paged with `nextToken`, the window in milliseconds. Several log
groups are read side by side and merged by time, so pages stay in time order. With
`insights_query`, a Logs Insights query runs over the window (in seconds) and is
polled until it completes or the deadline comes; Insights answers at most 10,000
rows per query, so a full answer is followed by another query from its last second.

Each event keeps its log stream's name as a field, and the stream name fills the
event's pod or host where it has the shape of one (Fluent Bit and Container Insights
streams name the pod, the agent's default names the EC2 instance, awslogs the ECS task).
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs import aws
from integrations.logs.store import LogStore, Record, Session
from integrations.plugin import SourceKind

# The largest page `filter_log_events` gives.
MAX_PAGE = 10_000
# The most rows one Logs Insights query returns.
INSIGHTS_LIMIT = 10_000
GRANT = "logs:FilterLogEvents (and logs:StartQuery, logs:GetQueryResults, logs:StopQuery for insights_query)"
_INSIGHTS_WAITING = frozenset({"Scheduled", "Running"})
_INSIGHTS_FIELDS = "fields @timestamp, @message, @logStream, @log"
# Fluent Bit / Container Insights: `[kube.var.log.containers.]<pod>_<namespace>_<container>-<container id>[.log]`.
_K8S_STREAM = re.compile(
    r"^(?:.*containers\.)?(?P<pod>[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?)_(?P<namespace>[a-z0-9-]+)_(?P<container>[a-z0-9-]+?)"
    r"(?:-[0-9a-f]{64})?(?:\.log)?$"
)
# A pod of a Deployment (`checkout-7d9f8b6c5d-x2kqz`) or a DaemonSet (`agent-x2kqz`).
_POD_NAME = re.compile(r"^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?-(?:[a-z0-9]{8,10}-)?[bcdfghjklmnpqrstvwxz2-9]{5}$")
# The CloudWatch agent's default stream: the instance id, or an EC2 host name.
_HOST_STREAM = re.compile(r"^(?:i-[0-9a-f]{8,17}|ip-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}(?:\.[a-z0-9.-]+)?)$")
# awslogs on ECS: `<prefix>/<container>/<task id>`.
_ECS_STREAM = re.compile(r"^[^/]+/(?P<container>[^/]+)/(?P<task>[0-9a-f]{32})$")


class CloudWatchOptions(aws.AwsOptions):
    log_group: str | None = Field(None, description="log group to read, e.g. /aws/containerinsights/prod/application")
    log_groups: list[str] | None = Field(
        None, min_length=1, max_length=50, description="several log groups, read together and merged by time (instead of log_group)"
    )
    log_stream_prefix: str | None = Field(None, description="read only the log streams whose name starts with this, e.g. checkout-")
    filter_pattern: str | None = Field(
        None, description='CloudWatch filter pattern the events must match, e.g. ?ERROR ?WARN or { $.service = "checkout" }'
    )
    insights_query: str | None = Field(
        None,
        description="Logs Insights commands selecting the service's events (e.g. filter @message like /checkout/), run instead "
        "of filter_log_events; fields, sort and limit are added",
    )
    page_size: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="events per filter_log_events call")
    poll_s: float = Field(1.0, gt=0, le=30, description="longest wait between two polls of a running Logs Insights query")

    @model_validator(mode="after")
    def _one_way_to_name_groups(self) -> CloudWatchOptions:
        if (self.log_group is None) == (self.log_groups is None):
            raise ValueError("give exactly one of log_group or log_groups")
        if self.insights_query is not None and self.filter_pattern is not None:
            raise ValueError("filter_pattern applies to filter_log_events: with insights_query, filter in the query")
        return self

    @property
    def groups(self) -> list[str]:
        return list(self.log_groups or [self.log_group or ""])


class CloudWatchLogs(LogStore):
    """CloudWatch Logs log groups as a log source."""

    kind = "cloudwatch"

    def __init__(self, options: CloudWatchOptions) -> None:
        self.groups = options.groups
        self.where = aws.where("CloudWatch Logs", options, options.region)
        self._options = options
        self._client: Any = None
        super().__init__(options, options.name or "cloudwatch")

    def describe(self) -> str:
        options = self._options
        target = ", ".join(options.groups)
        if options.log_stream_prefix:
            target += f" (streams {options.log_stream_prefix}*)"
        if options.insights_query:
            return f"Logs Insights '{options.insights_query}' on {target} at {self.where}"
        pattern = f"'{options.filter_pattern}' in " if options.filter_pattern else ""
        return f"{pattern}{target} at {self.where}"

    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("logs", self._options, self.where)
        return self._client

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        if self._options.insights_query is not None:
            yield from self._insights(start, end, session)
            return
        per_group = [self._filtered(group, start, end, session) for group in self.groups]
        if len(per_group) == 1:
            yield from per_group[0]
            return
        # Each group's pages are in time order: merged record by record, the pages of all stay in time order.
        merged = heapq.merge(*(_flat(pages) for pages in per_group), key=_when)
        while page := list(islice(merged, self._options.page_size)):
            yield page

    def _filtered(self, group: str, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        options = self._options
        # The API's range includes both ends, in whole milliseconds.
        asked: dict[str, Any] = {
            "logGroupName": group,
            "startTime": -(-_us(start) // 1000),
            "endTime": _us(end) // 1000,
            "limit": options.page_size,
            # Deprecated: AWS always interleaves the streams by time now; asked for all the same, as moto interleaves only when asked.
            "interleaved": True,
        }
        if options.log_stream_prefix:
            asked["logStreamNamePrefix"] = options.log_stream_prefix
        if options.filter_pattern:
            asked["filterPattern"] = options.filter_pattern
        token: str | None = None
        while True:
            request = asked if token is None else {**asked, "nextToken": token}
            answer = session.call(lambda request=request: self._api("filter_log_events", request, group), what="filter_log_events")  # type: ignore[misc]
            records = [_record(event, group) for event in answer.get("events") or []]
            if options.log_stream_prefix:
                records = [r for r in records if r.labels.get("logStreamName", "").startswith(options.log_stream_prefix)]
            if records:
                yield records
            following = answer.get("nextToken")
            # The same token again would read the same page for ever.
            if not following or following == token:
                return
            token = following

    def _insights(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        """Insights queries over [start, end], each from the last second the one before reached, until one is not full."""
        first = int(start.timestamp())
        last = -(-_us(end) // 1_000_000)
        # Rows of the second a full answer ended in: the next query starts at that second and reads them again.
        seen: set[tuple[str, str, str]] = set()
        while True:
            rows = self._query(first, last, session)
            fresh = [row for row in rows if _row_key(row) not in seen]
            records = [r for r in (_insights_record(row, self.groups) for row in fresh) if r is not None]
            if records:
                yield records
            if len(rows) < INSIGHTS_LIMIT:
                return
            reached = max(int(_row_time(row).timestamp()) for row in rows)
            if reached == first and not fresh:
                session.account.partial.append(
                    f"more than {INSIGHTS_LIMIT:,} events in the second {datetime.fromtimestamp(first, UTC).isoformat()}: the rest skipped"
                )
                first, seen = first + 1, set()
                continue
            if reached != first:
                seen = set()
            first = reached
            seen.update(_row_key(row) for row in rows if int(_row_time(row).timestamp()) == reached)

    def _query(self, first: int, last: int, session: Session) -> list[list[dict[str, str]]]:
        options = self._options
        commands = [_INSIGHTS_FIELDS]
        if options.log_stream_prefix:
            commands.append(f"filter @logStream like /^{re.escape(options.log_stream_prefix)}/")
        if options.insights_query and options.insights_query.strip():
            commands.append(options.insights_query.strip())
        commands += ["sort @timestamp asc", f"limit {INSIGHTS_LIMIT}"]
        request = {"logGroupNames": self.groups, "startTime": first, "endTime": last, "queryString": " | ".join(commands)}
        query_id = session.call(lambda: self._api("start_query", request, ", ".join(self.groups))["queryId"], what="Logs Insights start")
        done = False
        status = "Scheduled"
        try:
            wait = 0.1
            while True:
                try:
                    answer = session.call(lambda: self._api("get_query_results", {"queryId": query_id}, "the query"), what="Logs Insights")
                except SourceError:
                    if session.deadline.remaining() > 0:
                        raise
                    # The deadline came during a poll: what matters is that the query had not finished.
                    raise SourceError(f"{self.where}: the Logs Insights query {_late(status, options.deadline_s)}") from None
                status = str(answer.get("status", "Unknown"))
                if status == "Complete":
                    done = True
                    rows: list[list[dict[str, str]]] = answer.get("results") or []
                    return rows
                if status not in _INSIGHTS_WAITING:
                    done = True
                    raise SourceError(f"{self.where}: the Logs Insights query {_status_reason(status)}")
                if session.deadline.remaining() <= wait:
                    raise SourceError(f"{self.where}: the Logs Insights query {_late(status, options.deadline_s)}")
                time.sleep(wait)
                wait = min(wait * 2, options.poll_s)
        finally:
            if not done:
                self._stop(query_id)

    def _stop(self, query_id: str) -> None:
        """Stop a query we no longer wait for: it would run on, and be billed, for nothing."""
        try:
            self.client().stop_query(queryId=query_id)
        except Exception:  # noqa: BLE001  (best effort: the read's own error is the one to report)
            return

    def _api(self, operation: str, request: dict[str, Any], what: str) -> dict[str, Any]:
        client = self.client()
        try:
            answer: dict[str, Any] = getattr(client, operation)(**request)
        except Exception as exc:  # noqa: BLE001  (every client failure becomes a SourceError or a RetryableError)
            raise aws.api_error(exc, self.where, missing=f"log group {what}", grant=GRANT) from None
        return answer

    def check(self) -> str:
        """One small read of the last hour: the credentials, the region and every log group answer."""
        now = datetime.now(UTC)
        found = 0
        for group in self.groups:
            request = {"logGroupName": group, "startTime": _us(now - timedelta(hours=1)) // 1000, "endTime": _us(now) // 1000, "limit": 1}
            found += len(self._api("filter_log_events", request, group).get("events") or [])
        return f"{self.where} reads {', '.join(self.groups)}; {'events' if found else 'no events'} in the last hour"


def _us(moment: datetime) -> int:
    """Microseconds since the epoch (integer arithmetic: floats lose the last digits); callers divide to their unit."""
    moment = moment.astimezone(UTC)
    return int(moment.replace(microsecond=0).timestamp()) * 1_000_000 + moment.microsecond


def _flat(pages: Iterator[list[Record]]) -> Iterator[Record]:
    for page in pages:
        yield from page


def _when(record: Record) -> datetime:
    return record.ts or datetime.min.replace(tzinfo=UTC)


def _record(event: dict[str, Any], group: str) -> Record:
    stream = str(event.get("logStreamName") or "")
    labels = {"logGroupName": group, "logStreamName": stream, **stream_fields(stream)}
    at = datetime.fromtimestamp(int(event.get("timestamp") or 0) / 1000, UTC)
    return Record(at, str(event.get("message") or "").rstrip("\n"), labels)


def stream_fields(stream: str) -> dict[str, str]:
    """The pod, host or task a log stream's name gives, by the naming of the agent that wrote it; none when unknown."""
    if match := _K8S_STREAM.match(stream):
        return {"pod": match["pod"], "namespace": match["namespace"], "container": match["container"]}
    if _HOST_STREAM.match(stream):
        return {"hostname": stream}
    if match := _ECS_STREAM.match(stream):
        # An ECS task is what a pod is to Kubernetes: the unit that restarts and fails alone.
        return {"pod": match["task"], "container": match["container"]}
    if _POD_NAME.match(stream):
        return {"pod": stream}
    return {}


def _fields(row: list[dict[str, str]]) -> dict[str, str]:
    return {str(cell.get("field")): str(cell.get("value", "")) for cell in row}


def _row_time(row: list[dict[str, str]]) -> datetime:
    # Insights writes @timestamp as `2026-03-10 11:59:58.123`, in UTC; emulators as epoch milliseconds.
    text = _fields(row).get("@timestamp", "")
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _row_key(row: list[dict[str, str]]) -> tuple[str, str, str]:
    fields = _fields(row)
    return fields.get("@timestamp", ""), fields.get("@logStream", ""), fields.get("@message", "")


def _insights_record(row: list[dict[str, str]], groups: list[str]) -> Record | None:
    fields = _fields(row)
    at = _row_time(row)
    if at.year == 1:
        return None
    stream = fields.get("@logStream", "")
    # `@log` is `<account id>:<log group>`.
    group = fields.get("@log", "").partition(":")[2] or groups[0]
    labels = {"logGroupName": group, "logStreamName": stream, **stream_fields(stream)}
    return Record(at, fields.get("@message", "").rstrip("\n"), labels)


def _late(status: str, deadline_s: float) -> str:
    return f"was still {status} at the deadline of {deadline_s:g}s"


def _status_reason(status: str) -> str:
    return {
        "Failed": "failed: check its syntax and the field names it uses",
        "Cancelled": "was cancelled (someone or something stopped it in the console or with StopQuery)",
        "Timeout": "timed out in Logs Insights (60 minutes at most): narrow the query or the window",
    }.get(status, f"ended with status {status}")


def _check(source: CloudWatchLogs) -> str:
    return source.check()


def _build(options: CloudWatchOptions, _base_dir: Path) -> CloudWatchLogs:
    return CloudWatchLogs(options)


KIND = SourceKind(
    name="cloudwatch",
    role=roles.LOGS,
    options=CloudWatchOptions,
    build=_build,
    check=_check,
    summary="CloudWatch Logs log groups through boto3 (filter_log_events by nextToken, or a Logs Insights query)",
)
