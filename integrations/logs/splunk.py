"""The `splunk` log kind: a Splunk search exported with splunk-sdk (`POST /services/search/jobs/export`, JSON results).

The window goes in as `earliest_time`/`latest_time` in epoch seconds; `| reverse` is
appended so that events stream oldest first (an event search gives them newest first).
The export is one streaming answer: its lines are read as they arrive, each parsed with
splunk-sdk's `JSONResultsReader`, and handed on in batches, so the first events are
analysed while Splunk still searches. `_raw` is the line, `_time` its time, and the
event's other fields (host, source, sourcetype, index, extracted fields) its labels.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.logs.store_fields import MAX_LABEL_CHARS, first_page
from integrations.plugin import EnvVarName, SourceKind, secret_from_env
from integrations.remote_calls import RetryableError

if TYPE_CHECKING:
    from splunklib.binding import HTTPError
    from splunklib.client import Service

_MSG = re.compile(r"<msg\b[^>]*>([^<]*)</msg>")
# Records handed on per page: the export streams, this only groups what has arrived.
BATCH = 500
# Fields Splunk adds to every event for its own bookkeeping: not evidence.
_INTERNAL = frozenset({"punct", "linecount", "splunk_server", "splunk_server_group", "eventtype", "timestartpos", "timeendpos", "tag"})


class SplunkOptions(StoreOptions):
    search: str = Field(
        min_length=1, description="Splunk search for the service's events, e.g. index=web sourcetype=nginx service=checkout"
    )
    host: str = Field(min_length=1, description="Splunk management host (search head), e.g. splunk.example.com")
    port: int = Field(8089, ge=1, le=65535, description="Splunk management port (REST API)")
    scheme: Literal["https", "http"] = Field("https", description="https, or http for a management port without TLS")
    verify_tls: bool = Field(True, description="check the server's TLS certificate (turn off only for a self-signed test instance)")
    token_env: EnvVarName = Field(
        "SPLUNK_TOKEN", description="environment variable holding a Splunk authentication token (used unless username_env is set)"
    )
    username_env: EnvVarName | None = Field(None, description="environment variable holding a user name, to log in with a password instead")
    password_env: EnvVarName = Field("SPLUNK_PASSWORD", description="environment variable holding that user's password")


class SplunkLogSource(LogStore):
    kind = "splunk"

    def __init__(self, options: SplunkOptions) -> None:
        self.options: SplunkOptions = options
        self.url = f"{options.scheme}://{options.host}:{options.port}"
        self._username: str | None = None
        self._secret: SecretStr
        if options.username_env:
            self._username = secret_from_env(options.username_env, purpose="splunk user name").get_secret_value()
            self._secret = secret_from_env(options.password_env, purpose="splunk password")
        else:
            self._secret = secret_from_env(options.token_env, purpose="splunk token")
        super().__init__(options)

    def describe(self) -> str:
        return f"Splunk search {self.options.search!r} at {self.url}"

    def spl(self) -> str:
        text = self.options.search.strip()
        # The REST API runs what it is given: a search that is not a generating command needs its `search` verb.
        head = text if text.startswith(("search ", "|")) else f"search {text}"
        return f"{head} | reverse"

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        from splunklib.results import JSONResultsReader, Message

        service = session.call(lambda: self._service(session.timeout()), what=f"Splunk login at {self.url}")
        stream = session.call(
            lambda: self._guarded(
                lambda: service.jobs.export(
                    self.spl(),
                    earliest_time=f"{start.timestamp():.3f}",
                    # `latest_time` excludes its instant; the base drops what lies past the end.
                    latest_time=f"{(end + timedelta(milliseconds=1)).timestamp():.3f}",
                    output_mode="json",
                )
            ),
            what=f"Splunk search at {self.url}",
        )
        batch: list[Record] = []
        try:
            for line in _lines(stream):
                # One line of the export is one JSON document; the SDK's reader parses it (results, messages, preview).
                reader = JSONResultsReader(io.BytesIO(line))
                items = list(reader)
                for item in items:
                    if isinstance(item, Message):
                        self._message(item, session)
                    # A preview (a reporting search still running) is replaced by the final results that follow it.
                    elif isinstance(item, dict) and not reader.is_preview:
                        batch.append(record_of(item))
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
        except OSError as exc:
            # Mid-stream: what arrived counts, the base marks the read cut short.
            raise SourceError(f"Splunk search at {self.url}: the export stopped ({type(exc).__name__})") from None
        finally:
            stream.close()
        yield batch

    def _message(self, message: Any, session: Session) -> None:
        kind, text = str(message.type).upper(), " ".join(str(message.message).split())[:300]
        if kind in ("FATAL", "ERROR"):
            raise SourceError(f"Splunk search at {self.url} failed: {text}")
        if kind == "WARN" and f"Splunk: {text}" not in session.account.partial:
            session.account.partial.append(f"Splunk: {text}")

    def _service(self, timeout: float) -> Service:
        from splunklib import binding, client

        handler = binding.handler(timeout=timeout, verify=self.options.verify_tls)
        where = {"host": self.options.host, "port": self.options.port, "scheme": self.options.scheme, "handler": handler}
        if self._username is None:
            return client.Service(**where, splunkToken=self._secret.get_secret_value())
        service = client.Service(**where, username=self._username, password=self._secret.get_secret_value())
        self._guarded(service.login)
        return service

    def _guarded(self, call: Any) -> Any:
        from splunklib.binding import HTTPError

        try:
            return call()
        except HTTPError as exc:
            raise self._error(exc) from None
        except OSError as exc:
            raise RetryableError(f"no answer ({type(exc).__name__})") from None

    def _error(self, exc: HTTPError) -> SourceError:
        status = int(exc.status)
        detail = _detail(exc.body)
        said = f": {detail}" if detail else ""
        if status in (429, 503):
            headers = {str(k).lower(): str(v) for k, v in exc.headers or []}
            wait = headers.get("retry-after", "")
            return RetryableError(f"busy ({status}{said})", wait_s=float(wait) if wait.isdigit() else None)
        if status >= 500:
            return RetryableError(f"answered {status}{said}")
        if status == 401 and self._username is not None:
            return SourceError(
                f"refused the login of {self._username!r} (401{said}); check {self.options.username_env} and {self.options.password_env}"
            )
        if status in (401, 403):
            return SourceError(
                f"refused the credentials ({status}{said}); check {self.options.username_env or self.options.token_env} "
                "and that the role may search the index (search capability, srchIndexesAllowed)"
            )
        return SourceError(f"rejected the search ({status}{said})")


def record_of(result: dict[str, Any]) -> Record:
    """One exported event: `_raw` the line, `_time` its time, its other fields but Splunk's bookkeeping the labels."""
    labels: dict[str, str] = {}
    for key, value in result.items():
        if key.startswith("_") or key.startswith("date_") or key in _INTERNAL or value in (None, ""):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        # `host` alone would be read as a peer the event talks to; Splunk's host is the machine that wrote it.
        labels["hostname" if key == "host" else key] = text[:MAX_LABEL_CHARS]
    return Record(_time(result.get("_time")), str(result.get("_raw") or ""), labels)


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            return datetime.fromtimestamp(float(raw), UTC)
        except ValueError:
            return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lines(stream: Any) -> Iterator[bytes]:
    """The export's lines as they arrive (the SDK's reader alone would read the whole answer first).

    A read returns when 16 KB have come (about a hundred events) or the answer ends:
    small enough that a slow search is not held back long, large enough to cost little.
    """
    pending = b""
    while chunk := stream.read(16 * 1024):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


def _detail(body: Any) -> str:
    """Splunk's own message from an error body: JSON `messages[].text` or XML `messages/msg`."""
    raw = body if isinstance(body, bytes) else str(body or "").encode()
    text = ""
    try:
        messages = json.loads(raw).get("messages") or []
        text = " ".join(str(m.get("text", "")) for m in messages if isinstance(m, dict))
    except (ValueError, AttributeError):
        # The XML error answer is `<response><messages><msg type=...>text</msg>`; nothing else of it is needed.
        text = " ".join(_MSG.findall(raw.decode("utf-8", errors="replace")))
    return " ".join(text.split())[:300]


def _check(source: SplunkLogSource) -> str:
    first = first_page(source, timedelta(minutes=15))
    return f"{source.describe()}: credentials accepted, {first} events in the last 15 minutes (first batch)"


def _build(options: SplunkOptions, _base_dir: Path) -> SplunkLogSource:
    return SplunkLogSource(options)


KIND = SourceKind(
    name="splunk",
    role=roles.LOGS,
    options=SplunkOptions,
    build=_build,
    check=_check,
    summary="Splunk search exported as JSON (/services/search/jobs/export) with splunk-sdk",
)
