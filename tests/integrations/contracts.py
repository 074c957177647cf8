"""Contract tests per evidence role: every source kind of a role passes the same tests on the same data.

A kind's test module subclasses its role's contract (`class TestFilesContract(LogSourceContract)`),
names the kind (`kind = files.KIND`) and provides two fixtures:

- `make_source`: a factory that, given records of the role's standard dataset below, stores
  them the way the kind reads them (files, a repository, a stand-in server) and returns the
  catalog options of a source holding exactly those records. Relative paths in the options
  resolve against `tmp_path`, the catalog's folder in these tests.
- `broken_source`: a `Broken`: the options of an unreachable or misconfigured instance whose
  target (the path or URL its error must name) contains `SECRET_DIR`. Parametrize the fixture
  to cover several ways of being broken.

`InfraSourceContract` stores `EventRecord`s: warning events the platform recorded about pods.
`ChangeSourceContract` also needs `slow_source`: a `Slow` source whose backend never answers.

The contract builds each source through its kind's descriptor (options model, then `build`),
as the registry does with a catalog entry, and reads it through the role's Protocol only.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import pytest
from typing_extensions import get_protocol_members

from core.catalog import Catalog, ServiceSpec, SourceSpec
from core.redaction import MASK
from integrations import roles
from integrations.code.base import ChangeSource, Commit, Deploy, DeploySource
from integrations.errors import SourceError
from integrations.health import check_service
from integrations.infra.base import FACT_KINDS, InfraFact, InfraSource
from integrations.logs.base import LogEvent, LogSource
from integrations.logs.capabilities import SplittableLogSource
from integrations.logs.parsing import MAX_LINE
from integrations.metrics.base import MetricSource, Series
from integrations.notify.base import Notice, OpsNotice, OpsNotifier
from integrations.plugin import SourceKind
from integrations.registry import build_specs
from integrations.runbooks.base import RunbookSource

Options = dict[str, Any]

# The window every contract reads: [START, END], both ends included.
T0: Final = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START: Final = T0 - timedelta(hours=1)
END: Final = T0
WINDOW: Final = (START, END)
# Wide enough to hold every record of every dataset.
EVER: Final = (T0 - timedelta(days=365), T0 + timedelta(days=365))

# A secret that a source's target may carry (a folder named like a credential, a URL with a password):
# a source's own error may quote its target, whoever shows the error redacts it.
SECRET: Final = "Hunter2-c0rrect-h0rse"
SECRET_DIR: Final = f"password={SECRET}"

# How long a streaming source may take to give its first event, however much it holds.
FIRST_EVENT_WITHIN_S: Final = 5.0
# How far past its own deadline a source may answer that it gave up.
DEADLINE_GRACE_S: Final = 3.0
# The most text any runbook kind keeps of one runbook.
MAX_RUNBOOK_CHARS: Final = 256 * 1024
SERVICE: Final = "svc"


# --- Standard datasets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    """One log event as a kind stores it; `ts` None: an event without a time (crash output, a banner)."""

    ts: datetime | None
    level: str
    message: str


LOG_RECORDS: Final = (
    LogRecord(None, "info", "starting without a clock"),
    LogRecord(T0 - timedelta(hours=2), "info", "long before the window"),
    LogRecord(START - timedelta(milliseconds=1), "warning", "just before the window"),
    LogRecord(START, "info", "at the start of the window"),
    LogRecord(T0 - timedelta(minutes=20), "error", "payment declined for order 7"),
    # Written after the line above but stamped earlier: a source keeps its own order.
    LogRecord(T0 - timedelta(minutes=40), "warning", "written late, stamped earlier"),
    LogRecord(None, "error", "a line without a time"),
    LogRecord(END, "info", "at the end of the window"),
    LogRecord(END + timedelta(milliseconds=1), "info", "just after the window"),
    LogRecord(T0 + timedelta(hours=1), "error", "long after the window"),
)
LOGS_IN_WINDOW: Final = tuple(r for r in LOG_RECORDS if r.ts is None or START <= r.ts <= END)


@dataclass(frozen=True)
class CommitRecord:
    """One commit: when it was committed, its title, and the new content of the files it changed."""

    at: datetime
    title: str
    files: dict[str, str]


BIG_FILE: Final = "fixtures/prices.csv"
COMMIT_RECORDS: Final = (
    CommitRecord(T0 - timedelta(days=3), "Initial import", {"app/pricing.py": "def price():\n    return 1\n", "README.md": "shop\n"}),
    CommitRecord(T0 - timedelta(hours=2), "Before the window", {"app/pricing.py": "def price():\n    return 2\n"}),
    CommitRecord(START, "At the start of the window", {"app/cart.py": "def total(items):\n    return sum(items)\n"}),
    CommitRecord(T0 - timedelta(minutes=30), "Change the price", {"app/pricing.py": "def price():\n    return 3\n"}),
    CommitRecord(
        T0 - timedelta(minutes=20), "Regenerate the price table", {BIG_FILE: "".join(f"sku-{i},{i % 97}.99\n" for i in range(4000))}
    ),
    CommitRecord(END, "At the end of the window", {"app/cart.py": "def total(items):\n    return round(sum(items), 2)\n"}),
    CommitRecord(T0 + timedelta(minutes=30), "After the window", {"README.md": "shop, with prices\n"}),
)
# Newest first, as every change source lists commits.
COMMITS_IN_WINDOW: Final = tuple(sorted((r for r in COMMIT_RECORDS if START <= r.at <= END), key=lambda r: r.at, reverse=True))


@dataclass(frozen=True)
class DeployRecord:
    at: datetime
    service: str
    version: str
    actor: str


DEPLOY_RECORDS: Final = (
    # Recorded out of time order: a source sorts them.
    DeployRecord(T0 - timedelta(minutes=20), "checkout", "v1.3.0", "argocd"),
    DeployRecord(T0 - timedelta(days=3), "checkout", "v1.0.0", "argocd"),
    DeployRecord(START, "checkout", "v1.2.0", "ana"),
    DeployRecord(START - timedelta(seconds=1), "checkout", "v1.1.9", "ana"),
    DeployRecord(END, "payments", "v7.0.1", "flux"),
    DeployRecord(END + timedelta(seconds=1), "checkout", "v1.3.1", "argocd"),
)
# Oldest first.
DEPLOYS_IN_WINDOW: Final = tuple(sorted((r for r in DEPLOY_RECORDS if START <= r.at <= END), key=lambda r: r.at))


@dataclass(frozen=True)
class MetricRecord:
    """One sample; `labels` as pairs so that the record stays hashable."""

    at: datetime
    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float


_CHECKOUT = (("service", "checkout"),)
_POD = (("pod", "checkout-7d9f"), ("container", "app"))
METRIC_RECORDS: Final = (
    MetricRecord(T0 - timedelta(minutes=10), "http_5xx_ratio", _CHECKOUT, 0.2),
    MetricRecord(START, "http_5xx_ratio", _CHECKOUT, 0.01),
    # Recorded out of time order: a source sorts each series' points.
    MetricRecord(T0 - timedelta(minutes=30), "http_5xx_ratio", _CHECKOUT, 0.05),
    MetricRecord(T0 - timedelta(hours=2), "http_5xx_ratio", _CHECKOUT, 0.0),
    MetricRecord(END, "http_5xx_ratio", _CHECKOUT, 0.3),
    MetricRecord(END + timedelta(minutes=1), "http_5xx_ratio", _CHECKOUT, 0.4),
    MetricRecord(T0 - timedelta(minutes=15), "cpu_seconds", _POD, 0.5),
    MetricRecord(T0 - timedelta(minutes=45), "cpu_seconds", _POD, 0.4),
    # A series with no sample in the window is no series at all.
    MetricRecord(T0 - timedelta(hours=5), "queue_depth", (), 12.0),
)


def expected_series(records: Sequence[MetricRecord], start: datetime, end: datetime) -> dict[str, list[tuple[datetime, float]]]:
    """Each series' key and its points in [start, end], oldest first."""
    found: dict[str, list[tuple[datetime, float]]] = {}
    for record in records:
        if start <= record.at <= end:
            found.setdefault(Series(record.metric, dict(record.labels)).key, []).append((record.at, record.value))
    return {key: sorted(points) for key, points in found.items()}


@dataclass(frozen=True)
class RunbookRecord:
    """A runbook: its title, where it sits (a `/`-separated name without extension) and its body."""

    title: str
    path: str
    body: str


RUNBOOK_RECORDS: Final = (
    RunbookRecord("Roll back a deploy", "deploys/rollback", "1. Find the last good version.\n2. Run the rollback job.\n"),
    RunbookRecord("Checkout is throwing 500s", "checkout-500s", "Check the discount service first.\n"),
    RunbookRecord("Disk full on a worker", "ops/disk/full", "Clear /var/tmp, then rotate the logs.\n"),
)


@dataclass(frozen=True)
class EventRecord:
    """A warning event the platform recorded about a pod: first and last seen, and how often (`kubectl get events`)."""

    at: datetime
    reason: str
    pod: str
    message: str
    count: int = 1
    last_at: datetime | None = None


EVENT_RECORDS: Final = (
    EventRecord(
        T0 - timedelta(hours=3),
        "FailedMount",
        "checkout-7d9f-x1",
        'MountVolume.SetUp failed for volume "config" : configmap "checkout" not found',
    ),
    # Began before the window and went on into it: a fact of the window.
    EventRecord(
        START - timedelta(minutes=30),
        "Unhealthy",
        "checkout-7d9f-x2",
        'Liveness probe failed: Get "http://10.1.2.3:8080/healthz": context deadline exceeded',
        count=40,
        last_at=START + timedelta(minutes=10),
    ),
    EventRecord(START + timedelta(minutes=5), "FailedScheduling", "checkout-7d9f-x3", "0/3 nodes are available: 3 Insufficient memory."),
    EventRecord(
        T0 - timedelta(minutes=20),
        "BackOff",
        "checkout-7d9f-x1",
        "Back-off restarting failed container app in pod checkout-7d9f-x1_shop",
        count=9,
        last_at=T0 - timedelta(minutes=1),
    ),
    EventRecord(T0 + timedelta(hours=2), "Evicted", "checkout-7d9f-x2", "The node was low on resource: memory."),
)
# The fact each reason is: the analysis reads the kind, whatever the platform called it.
EVENT_FACT_KINDS: Final = {
    "FailedMount": "mount_failed",
    "Unhealthy": "probe_failed",
    "FailedScheduling": "unschedulable",
    "BackOff": "crash_loop",
    "Evicted": "evicted",
}
EVENTS_IN_WINDOW: Final = tuple(r for r in EVENT_RECORDS if r.at <= END and (r.last_at or r.at) >= START)


# --- What a kind's module provides ---------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """Options of a source that cannot answer, and the target (path, URL) its error must name.

    `read_bug` / `check_bug`: a known product bug (file:line and why) for which reading, or
    `sources check`, does not yet report this instance; the test runs as a strict xfail,
    so it fails again the day the bug is fixed and the note must go.
    """

    options: Options
    target: str
    read_bug: str | None = None
    check_bug: str | None = None


@dataclass(frozen=True)
class Slow:
    """A built source whose backend never answers, configured to give up after `deadline_s`."""

    source: Any
    deadline_s: float
    target: str


class MakeLogSource(Protocol):
    def __call__(self, records: Sequence[LogRecord], *, endless: bool = False) -> Options:
        """Options of a source holding `records` in this order; `endless`: followed by far more data than a test can read."""
        ...


MakeChangeSource = Callable[[Sequence[CommitRecord]], Options]
MakeDeploySource = Callable[[Sequence[DeployRecord]], Options]
MakeMetricSource = Callable[[Sequence[MetricRecord]], Options]
MakeRunbookSource = Callable[[Sequence[RunbookRecord]], Options]
MakeInfraSource = Callable[[Sequence[EventRecord]], Options]


# --- Helpers -------------------------------------------------------------------------------------


def build(kind: SourceKind[Any, Any], options: Options, base_dir: Path) -> Any:
    """A source built from catalog options, as the registry builds one."""
    return kind.build(kind.options.model_validate(options), base_dir)


def catalog_of(kind: SourceKind[Any, Any], options: Options, base_dir: Path) -> Catalog:
    """A catalog with one service, `svc`, whose only source is this one."""
    service = ServiceSpec.model_validate({kind.role.name: [{"kind": kind.name, **options}]})
    return Catalog(services={SERVICE: service}, base_dir=base_dir)


def protocol_problems(source: object, protocol: type[Any]) -> list[str]:
    """What `source` lacks of `protocol`: a data member missing, a method missing or not callable."""
    problems = []
    for member in sorted(get_protocol_members(protocol)):
        declared = getattr(protocol, member, None)
        if not hasattr(source, member):
            problems.append(f"no '{member}'")
        elif callable(declared) and not callable(getattr(source, member)):
            problems.append(f"'{member}' is not callable")
    return problems


def assert_meets_protocol(source: object, protocol: type[Any]) -> None:
    assert protocol_problems(source, protocol) == [], f"{type(source).__name__} does not meet {protocol.__name__}"
    checkable = runtime_checkable(types.new_class(f"Checkable{protocol.__name__}", (protocol, Protocol)))
    assert isinstance(source, checkable)


def first_within(items: Callable[[], Iterator[Any]], seconds: float) -> Any:
    """The first item of `items()`, taken in a thread; fails the test when it takes longer than `seconds`."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def take() -> None:
        try:
            box.put((True, next(items())))
        except BaseException as exc:  # handed to the test, which raises it
            box.put((False, exc))

    # A daemon: a source that reads everything first must not hold the test run once it has failed.
    threading.Thread(target=take, name="first-event", daemon=True).start()
    try:
        ok, value = box.get(timeout=seconds)
    except queue.Empty:
        pytest.fail(f"no first event within {seconds:.0f}s: the source reads everything before it yields")
    if not ok:
        raise value
    return value


# --- The contracts -------------------------------------------------------------------------------


class _SourceContract:
    """What every kind of every role does: built from catalog options, labelled, checked, failing clearly."""

    kind: ClassVar[SourceKind[Any, Any]]
    role: ClassVar[roles.Role[Any, Any]]

    def standard(self, make_source: Any) -> Options:
        """Options of a source holding the role's standard dataset."""
        raise NotImplementedError

    def read(self, source: Any) -> object:
        """Read the source once through the role's Protocol, as an investigation would."""
        raise NotImplementedError

    def test_the_kind_serves_the_role_of_its_contract(self) -> None:
        assert self.kind.role is self.role

    def test_a_source_built_from_catalog_options_meets_the_role_protocol(self, make_source: Any, tmp_path: Path) -> None:
        source = build(self.kind, self.standard(make_source), tmp_path)

        assert_meets_protocol(source, self.role.protocol)
        assert isinstance(source.name, str) and source.name

    def test_the_name_option_labels_the_source_and_its_entry(self, make_source: Any, tmp_path: Path) -> None:
        spec = SourceSpec.model_validate({"kind": self.kind.name, **self.standard(make_source), "name": "primary"})

        built = build_specs({self.role.name: [spec]}, tmp_path)

        assert built.errors == []
        [entry] = built.entries(self.role)
        assert entry.label == f"{self.role.name}:primary"
        assert entry.kind is self.kind
        assert entry.source.name == "primary"

    def test_a_working_source_passes_sources_check_with_one_line(self, make_source: Any, tmp_path: Path) -> None:
        [result] = check_service(catalog_of(self.kind, self.standard(make_source), tmp_path), SERVICE, deadline_s=10)

        assert result.ok, result.detail
        assert result.label == f"{self.role.name}:{self.kind.name}"
        assert result.detail and "\n" not in result.detail

    def test_a_broken_source_raises_a_one_line_source_error_naming_its_target(
        self, broken_source: Broken, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        if broken_source.read_bug:
            request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=broken_source.read_bug))
        assert SECRET_DIR in broken_source.target, "the broken source's target must carry SECRET_DIR"

        try:
            self.read(build(self.kind, broken_source.options, tmp_path))
        except SourceError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"reading a broken {self.kind.name} source raised no SourceError")

        assert "\n" not in message
        assert broken_source.target in message

    def test_sources_check_reports_a_broken_source_with_its_secret_redacted(
        self, broken_source: Broken, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        if broken_source.check_bug:
            request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=broken_source.check_bug))

        [result] = check_service(catalog_of(self.kind, broken_source.options, tmp_path), SERVICE, deadline_s=10)

        assert not result.ok, f"sources check said the broken source answers: {result.detail}"
        assert result.label == f"{self.role.name}:{self.kind.name}"
        assert SECRET not in result.detail
        assert MASK in result.detail
        assert "\n" not in result.detail


class LogSourceContract(_SourceContract):
    """`LogSource`: events in the window and those without a time, in the source's order, streamed, bounded."""

    role = roles.LOGS

    def standard(self, make_source: MakeLogSource) -> Options:
        return make_source(LOG_RECORDS)

    def read(self, source: LogSource) -> object:
        return list(source.events(*WINDOW))

    def test_events_in_the_window_and_events_without_a_time_are_kept_in_the_source_order(
        self, make_source: MakeLogSource, tmp_path: Path
    ) -> None:
        source: LogSource = build(self.kind, make_source(LOG_RECORDS), tmp_path)

        events = list(source.events(*WINDOW))

        assert [(e.ts, e.level, e.message) for e in events] == [(r.ts, r.level, r.message) for r in LOGS_IN_WINDOW]
        assert all(isinstance(e.source, str) and e.source for e in events)

    def test_a_window_that_holds_nothing_gives_only_the_events_without_a_time(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source: LogSource = build(self.kind, make_source(LOG_RECORDS), tmp_path)
        empty = (T0 - timedelta(days=30), T0 - timedelta(days=29))

        assert [e.message for e in source.events(*empty)] == [r.message for r in LOG_RECORDS if r.ts is None]

    def test_events_stream_so_the_first_arrives_without_reading_everything(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source: LogSource = build(self.kind, make_source(LOG_RECORDS, endless=True), tmp_path)

        first: LogEvent = first_within(lambda: iter(source.events(*WINDOW)), FIRST_EVENT_WITHIN_S)

        assert first.message == LOGS_IN_WINDOW[0].message

    def test_an_over_long_line_is_cut_to_max_line_and_the_next_event_still_arrives(
        self, make_source: MakeLogSource, tmp_path: Path
    ) -> None:
        huge = LogRecord(T0 - timedelta(minutes=5), "error", "x" * (3 * MAX_LINE))
        after = LogRecord(T0 - timedelta(minutes=4), "info", "the line after the long one")
        source: LogSource = build(self.kind, make_source([huge, after]), tmp_path)

        events = list(source.events(*WINDOW))

        assert len(events) == 2
        assert all(len(e.raw) <= MAX_LINE and len(e.message) <= MAX_LINE for e in events)
        assert (events[1].ts, events[1].level, events[1].message) == (after.ts, after.level, after.message)

    def test_a_splittable_source_read_unit_by_unit_yields_the_same_events(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        # Enough events that a unit of a quarter of the volume is worth cutting.
        records = [
            LogRecord(START + timedelta(seconds=7 * i), ("info", "warning", "error")[i % 3], f"request {i} took {i % 13} ms")
            for i in range(400)
        ]
        source = build(self.kind, make_source(records), tmp_path)
        if not isinstance(source, SplittableLogSource):
            pytest.skip(f"a '{self.kind.name}' source cannot be split")

        units = source.units(max(1, source.volume() // 4))
        read_apart = [event for unit in units for event in pickle.loads(pickle.dumps(unit)).events(*WINDOW)]

        assert read_apart == list(source.events(*WINDOW))
        assert [e.message for e in read_apart] == [r.message for r in records]


# A log store holds no entry without a time: it stamps each one, and searches and answers in the order of its stamps.
STORE_RECORDS: Final = tuple(r for r in LOG_RECORDS if r.ts is not None)
STORE_IN_WINDOW: Final = tuple(sorted((r for r in STORE_RECORDS if r.ts is not None and START <= r.ts <= END), key=lambda r: r.ts or T0))
# Stamped on arrival, entries keep the order they were written in (each event still carries its line's own time).
ARRIVED_IN_WINDOW: Final = tuple(r for r in STORE_RECORDS if r.ts is not None and START <= r.ts <= END)


class LogStoreContract(LogSourceContract):
    """`LogSource` for a log store (Loki, Elasticsearch, CloudWatch, Datadog, Kafka, ...): entries in the window, in the store's order.

    A store holds no entry without a time, and answers in the order of its stamps, not
    in the order entries were written: `make_source` is given only timed records (the
    standard dataset's `STORE_RECORDS`), and the three tests below take the place of
    the file-shaped ones of the same name, which expect untimed events and write order.
    A store that stamps an entry with its own time (Loki's push, CloudWatch's PutLogEvents,
    an Elasticsearch `@timestamp`) answers in that time's order; one that stamps on
    arrival (`stamped_on_arrival`: Datadog, Splunk, Kafka, ...) in the order written.
    """

    stamped_on_arrival: ClassVar[bool] = False

    def in_window(self) -> tuple[LogRecord, ...]:
        return ARRIVED_IN_WINDOW if self.stamped_on_arrival else STORE_IN_WINDOW

    def standard(self, make_source: MakeLogSource) -> Options:
        return make_source(STORE_RECORDS)

    def test_events_in_the_window_and_events_without_a_time_are_kept_in_the_source_order(
        self, make_source: MakeLogSource, tmp_path: Path
    ) -> None:
        source: LogSource = build(self.kind, make_source(STORE_RECORDS), tmp_path)

        events = list(source.events(*WINDOW))

        assert [(e.ts, e.level, e.message) for e in events] == [(r.ts, r.level, r.message) for r in self.in_window()]
        assert all(isinstance(e.source, str) and e.source for e in events)

    def test_a_window_that_holds_nothing_gives_only_the_events_without_a_time(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source = build(self.kind, make_source(STORE_RECORDS), tmp_path)
        empty = (T0 - timedelta(days=30), T0 - timedelta(days=29))

        assert list(source.events(*empty)) == []
        assert source.account.empty and source.account.query, "the read says it found nothing, and what it asked"

    def test_events_stream_so_the_first_arrives_without_reading_everything(self, make_source: MakeLogSource, tmp_path: Path) -> None:
        source: LogSource = build(self.kind, make_source(STORE_RECORDS, endless=True), tmp_path)

        first: LogEvent = first_within(lambda: iter(source.events(*WINDOW)), FIRST_EVENT_WITHIN_S)

        assert first.message == self.in_window()[0].message


class ChangeSourceContract(_SourceContract):
    """`ChangeSource`: commits in the window newest first, bounded lists and diffs, refs resolved or None, a deadline."""

    role = roles.CODE

    def standard(self, make_source: MakeChangeSource) -> Options:
        return make_source(COMMIT_RECORDS)

    def read(self, source: ChangeSource) -> object:
        return source.commits(*WINDOW)

    @pytest.fixture
    def source(self, make_source: MakeChangeSource, tmp_path: Path) -> ChangeSource:
        built: ChangeSource = build(self.kind, make_source(COMMIT_RECORDS), tmp_path)
        return built

    @pytest.fixture
    def everything(self, source: ChangeSource) -> list[Commit]:
        """Every commit of the dataset, newest first."""
        return source.commits(*EVER)

    def test_commits_in_the_window_come_newest_first_with_their_files(self, source: ChangeSource) -> None:
        commits = source.commits(*WINDOW)

        assert [c.title for c in commits] == [r.title for r in COMMITS_IN_WINDOW]
        assert [c.committed_at for c in commits] == [r.at for r in COMMITS_IN_WINDOW]
        assert [sorted(f.path for f in c.files) for c in commits] == [sorted(r.files) for r in COMMITS_IN_WINDOW]
        assert all(len(c.sha) >= 40 and c.author for c in commits)

    def test_the_limit_keeps_the_newest_commits(self, source: ChangeSource) -> None:
        commits = source.commits(*EVER, limit=2)

        assert [c.title for c in commits] == [r.title for r in sorted(COMMIT_RECORDS, key=lambda r: r.at, reverse=True)[:2]]

    def test_a_diff_shows_the_change_and_is_cut_at_max_bytes(self, source: ChangeSource) -> None:
        by_title = {c.title: c for c in source.commits(*EVER)}
        price = by_title["Change the price"].sha
        table = by_title["Regenerate the price table"].sha

        assert "+    return 3" in source.diff(price)
        assert "-    return 2" in source.diff(price)
        assert len(source.diff(table).encode()) > 10_000
        cut = source.diff(table, max_bytes=1000)
        assert 0 < len(cut.encode()) <= 1000

    def test_a_diff_can_be_limited_to_some_paths(self, source: ChangeSource) -> None:
        initial = next(c for c in source.commits(*EVER) if c.title == "Initial import").sha

        only_pricing = source.diff(initial, paths=["app/pricing.py"])

        assert "app/pricing.py" in only_pricing and "README.md" not in only_pricing
        assert source.diff(initial, paths=["not/touched.py"]) == ""

    def test_resolve_gives_the_full_sha_for_a_sha_or_its_prefix(self, source: ChangeSource, everything: list[Commit]) -> None:
        for commit in everything:
            assert source.resolve(commit.sha) == commit.sha
            assert source.resolve(commit.sha[:10]) == commit.sha

    @pytest.mark.parametrize("ref", ["no-such-ref", "v9.9.9", "0" * 40, "deadbeef", "", "--all", "-h"])
    def test_an_unknown_ref_resolves_to_none(self, source: ChangeSource, ref: str) -> None:
        assert source.resolve(ref) is None

    def test_resolve_of_a_range_is_none_not_two_lines(self, source: ChangeSource, everything: list[Commit]) -> None:
        # A ref names one commit; a range (or anything else git can parse into several revisions) names none.
        oldest, newest = everything[-1].sha, everything[0].sha

        assert source.resolve(f"{oldest}..{newest}") is None

    def test_commits_between_lists_what_a_deploy_shipped_newest_first(self, source: ChangeSource, everything: list[Commit]) -> None:
        oldest, newest = everything[-1].sha, everything[0].sha

        assert source.commits_between(oldest, newest) == [c.sha for c in everything[:-1]]
        assert source.commits_between(None, oldest) == [oldest]
        assert source.commits_between(oldest, newest, limit=2) == [c.sha for c in everything[:2]]

    def test_a_diff_of_a_commit_the_source_does_not_hold_is_a_source_error(self, source: ChangeSource) -> None:
        # Not an empty diff: that would read as "the commit changed nothing".
        with pytest.raises(SourceError) as raised:
            source.diff("0" * 40)

        assert "\n" not in str(raised.value)

    def test_a_ref_that_looks_like_an_option_is_never_taken_as_one(
        self, source: ChangeSource, everything: list[Commit], tmp_path: Path
    ) -> None:
        # Shas reach a source from deploy records, log lines and stored reports: text the responder does not control.
        planted = tmp_path / "planted"
        option = f"--output={planted}"
        newest = everything[0].sha

        for call in (
            lambda: source.diff(option),
            lambda: source.commits_between(option, newest),
            lambda: source.commits_between(None, option),
            lambda: source.resolve(option),
        ):
            with contextlib.suppress(SourceError):
                call()

        assert sorted(p.name for p in tmp_path.glob("planted*")) == []
        assert source.commits_between(None, "--all") == []

    def test_a_source_that_does_not_answer_gives_up_at_its_deadline(self, slow_source: Slow) -> None:
        began = time.monotonic()
        with pytest.raises(SourceError) as raised:
            slow_source.source.commits(*WINDOW)
        took = time.monotonic() - began

        assert took < slow_source.deadline_s + DEADLINE_GRACE_S
        assert "\n" not in str(raised.value)
        assert slow_source.target in str(raised.value)


class DeploySourceContract(_SourceContract):
    """`DeploySource`: deploys in the window, oldest first, with what each one shipped."""

    role = roles.DEPLOYS

    def standard(self, make_source: MakeDeploySource) -> Options:
        return make_source(DEPLOY_RECORDS)

    def read(self, source: DeploySource) -> object:
        return source.deploys(*WINDOW)

    def test_deploys_in_the_window_come_oldest_first(self, make_source: MakeDeploySource, tmp_path: Path) -> None:
        source: DeploySource = build(self.kind, make_source(DEPLOY_RECORDS), tmp_path)

        deploys = source.deploys(*WINDOW)

        assert all(isinstance(d, Deploy) for d in deploys)
        assert [(d.at, d.service, d.version, d.actor) for d in deploys] == [
            (r.at, r.service, r.version, r.actor) for r in DEPLOYS_IN_WINDOW
        ]

    def test_a_window_that_holds_no_deploy_gives_an_empty_list(self, make_source: MakeDeploySource, tmp_path: Path) -> None:
        source: DeploySource = build(self.kind, make_source(DEPLOY_RECORDS), tmp_path)

        assert source.deploys(T0 - timedelta(days=30), T0 - timedelta(days=29)) == []


class MetricSourceContract(_SourceContract):
    """`MetricSource`: each series with its points in the window, oldest first; a series without any is left out."""

    role = roles.METRICS

    def standard(self, make_source: MakeMetricSource) -> Options:
        return make_source(METRIC_RECORDS)

    def read(self, source: MetricSource) -> object:
        return source.series(*WINDOW)

    def test_series_keep_the_points_in_the_window_oldest_first(self, make_source: MakeMetricSource, tmp_path: Path) -> None:
        source: MetricSource = build(self.kind, make_source(METRIC_RECORDS), tmp_path)

        series = source.series(*WINDOW)

        assert len({s.key for s in series}) == len(series)
        assert {s.key: s.points for s in series} == expected_series(METRIC_RECORDS, START, END)

    def test_labels_are_kept_as_a_mapping(self, make_source: MakeMetricSource, tmp_path: Path) -> None:
        source: MetricSource = build(self.kind, make_source(METRIC_RECORDS), tmp_path)

        labels = {s.metric: s.labels for s in source.series(*EVER)}

        assert labels == {r.metric: dict(r.labels) for r in METRIC_RECORDS}


class RunbookSourceContract(_SourceContract):
    """`RunbookSource`: every runbook with its title and text, the text bounded."""

    role = roles.RUNBOOKS

    def standard(self, make_source: MakeRunbookSource) -> Options:
        return make_source(RUNBOOK_RECORDS)

    def read(self, source: RunbookSource) -> object:
        return source.runbooks()

    def test_every_runbook_comes_with_its_title_and_text(self, make_source: MakeRunbookSource, tmp_path: Path) -> None:
        source: RunbookSource = build(self.kind, make_source(RUNBOOK_RECORDS), tmp_path)

        books = {b.title: b for b in source.runbooks()}

        assert sorted(books) == sorted(r.title for r in RUNBOOK_RECORDS)
        for record in RUNBOOK_RECORDS:
            assert record.body in books[record.title].text
            assert books[record.title].path

    def test_a_huge_runbook_is_kept_to_a_bounded_text(self, make_source: MakeRunbookSource, tmp_path: Path) -> None:
        huge = RunbookRecord("Everything we know", "everything", "Restart it.\n" * 100_000)
        source: RunbookSource = build(self.kind, make_source([huge, *RUNBOOK_RECORDS]), tmp_path)

        books = {b.title: b for b in source.runbooks()}

        assert 0 < len(books[huge.title].text) <= MAX_RUNBOOK_CHARS
        assert sorted(books) == sorted([huge.title, *(r.title for r in RUNBOOK_RECORDS)])


NOTICE: Final = Notice(
    investigation_id="inv_contract01",
    service=SERVICE,
    title="checkout: 502s on /pay",
    category="bad_deploy",
    confidence=0.82,
    summary="Release 2.4 of checkout throws on a missing discount; roll it back.",
    report_url="http://ir.test/investigations/inv_contract01",
    text="Bad deploy in checkout (82% confidence). Roll back release 2.4.",
    html="<p>Bad deploy in <b>checkout</b> (82% confidence). Roll back release 2.4.</p>",
    culprit="abc1234 Apply discounts at checkout",
    actions=("Roll back release 2.4",),
    delivery_id="dlv_inv_contract01_target",
)
OPS_NOTICE: Final = OpsNotice(
    signal="queue_backlog",
    subject="investigations",
    title="The job queue investigations is backing up",
    text="140 jobs waiting (alert at 100); the oldest has waited 900 s (alert at 600 s).",
    link="http://ir.test/",
    at=datetime(2026, 3, 10, 13, 40, tzinfo=UTC),
    delivery_id="ops-0123456789abcdef-1773150000-target",
)

# What a notifier's receiver took, one text per delivery (a request body, a mail), for the contract to read.
Delivered = Callable[[], list[str]]


class NotifierContract(_SourceContract):
    """`Notifier`: a notice reaches its target once per send, with the report's link; where it sends is named without secrets.

    Kinds' modules also provide `delivered`: the deliveries their receiver took, as texts.
    """

    role = roles.NOTIFY

    def standard(self, make_source: Callable[[], Options]) -> Options:
        return make_source()

    def read(self, source: Any) -> object:
        source.send(NOTICE)
        return None

    def test_a_notice_reaches_its_target_once_with_the_report_link(
        self, make_source: Callable[[], Options], delivered: Delivered, tmp_path: Path
    ) -> None:
        source = build(self.kind, make_source(), tmp_path)

        source.send(NOTICE)

        [text] = delivered()
        assert NOTICE.report_url in text
        assert NOTICE.title in text or NOTICE.investigation_id in text

    def test_the_target_is_named_without_secrets(self, make_source: Callable[[], Options], tmp_path: Path) -> None:
        source = build(self.kind, make_source(), tmp_path)

        assert isinstance(source.target, str) and source.target
        assert SECRET not in source.target

    def test_an_ops_notice_reaches_its_target_once_with_its_title_and_link(
        self, make_source: Callable[[], Options], delivered: Delivered, tmp_path: Path
    ) -> None:
        source = build(self.kind, make_source(), tmp_path)
        assert isinstance(source, OpsNotifier), "every notify kind can be an ops target (defaults.ops_notify)"

        source.send_ops(OPS_NOTICE)

        [text] = delivered()
        assert OPS_NOTICE.title in text and OPS_NOTICE.link in text


class InfraSourceContract(_SourceContract):
    """`InfraSource`: facts whose span meets the window (and those without a time), each with the platform's reason and UTC times."""

    role = roles.INFRA

    def standard(self, make_source: MakeInfraSource) -> Options:
        return make_source(EVENT_RECORDS)

    def read(self, source: InfraSource) -> object:
        return source.facts(*WINDOW)

    @staticmethod
    def from_events(facts: list[InfraFact]) -> list[InfraFact]:
        return [f for f in facts if f.reason in EVENT_FACT_KINDS]

    def test_events_whose_span_meets_the_window_are_facts_with_their_kind_times_count_and_pod(
        self, make_source: MakeInfraSource, tmp_path: Path
    ) -> None:
        source: InfraSource = build(self.kind, make_source(EVENT_RECORDS), tmp_path)

        facts = self.from_events(source.facts(*WINDOW))

        assert all(isinstance(f, InfraFact) for f in facts)
        assert sorted((f.kind, f.reason, f.at, f.last_at or f.at, f.count) for f in facts) == sorted(
            (EVENT_FACT_KINDS[r.reason], r.reason, r.at, r.last_at or r.at, r.count) for r in EVENTS_IN_WINDOW
        )
        for fact in facts:
            record = next(r for r in EVENTS_IN_WINDOW if r.reason == fact.reason)
            assert record.pod in fact.subject
            assert fact.detail and "\n" not in fact.detail

    def test_every_fact_is_of_a_known_kind_with_utc_times(self, make_source: MakeInfraSource, tmp_path: Path) -> None:
        source: InfraSource = build(self.kind, make_source(EVENT_RECORDS), tmp_path)

        facts = source.facts(*EVER)

        assert {f.kind for f in facts} <= set(FACT_KINDS)
        moments = [m for f in facts for m in (f.at, f.last_at) if m is not None]
        assert moments and all(m.utcoffset() == timedelta(0) for m in moments)
        assert len(self.from_events(facts)) == len(EVENT_RECORDS)

    def test_a_window_that_holds_nothing_gives_no_fact_with_a_time(self, make_source: MakeInfraSource, tmp_path: Path) -> None:
        source: InfraSource = build(self.kind, make_source(EVENT_RECORDS), tmp_path)

        facts = source.facts(T0 - timedelta(days=30), T0 - timedelta(days=29))

        assert [f for f in facts if f.at is not None] == []


CONTRACTS: Final[dict[str, type[_SourceContract]]] = {
    roles.LOGS.name: LogSourceContract,
    roles.CODE.name: ChangeSourceContract,
    roles.DEPLOYS.name: DeploySourceContract,
    roles.METRICS.name: MetricSourceContract,
    roles.RUNBOOKS.name: RunbookSourceContract,
    roles.NOTIFY.name: NotifierContract,
    roles.INFRA.name: InfraSourceContract,
}
