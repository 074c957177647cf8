"""The `gcs` kind through google-cloud-storage against gcp-storage-emulator, behind a pager that adds what the emulator lacks."""

from __future__ import annotations

import gzip
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_logs import BUNDLES, findings, investigate
from standin_gcs import GcsEmulator, GcsPager, Refusal
from standin_github import closed_port

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs import gcs
from integrations.logs.gcs import GcsLogs, GcsOptions
from integrations.registry import ServiceSources
from integrations.roles import LOGS

START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_BUCKETS = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[GcsEmulator]:
    server = GcsEmulator().start()
    yield server
    server.stop()


@pytest.fixture
def pager(emulator: GcsEmulator) -> Iterator[GcsPager]:
    server = GcsPager(emulator.url).start()
    yield server
    server.stop()


def new_bucket(emulator: GcsEmulator) -> str:
    name = f"logs-{next(_BUCKETS)}"
    emulator.client().create_bucket(name)
    return name


def put(emulator: GcsEmulator, bucket: str, name: str, lines: Sequence[str], *, gzipped: bool = True) -> None:
    body = "".join(f"{line}\n" for line in lines).encode()
    emulator.client().bucket(bucket).blob(name).upload_from_string(gzip.compress(body) if gzipped else body)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_line(record: LogRecord) -> str:
    return json.dumps({"time": record.ts.isoformat() if record.ts else None, "level": record.level, "msg": record.message})


def store(url: str, bucket: str, **options: Any) -> GcsLogs:
    return GcsLogs(GcsOptions.model_validate({"endpoint_url": url, "anonymous": True, "bucket": bucket, "cache_ttl_s": 0, **options}))


def engine_read(source: Any) -> tuple[int, list[Degradation]]:
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="checkout", created_at=END),
        service="checkout",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
    )
    degraded: list[Degradation] = []
    stats = read_logs(inputs, lambda *_: None, degraded, [])
    return stats.events, degraded


class TestGcsContract(LogStoreContract):
    kind = gcs.KIND

    @pytest.fixture
    def make_source(self, emulator: GcsEmulator) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            bucket = new_bucket(emulator)
            lines = [json_line(r) for r in records]
            if endless:
                # Written after the records, stamped inside the window: an object far larger than a test can read.
                flood = (
                    json.dumps({"time": (START + timedelta(microseconds=i + 1)).isoformat(), "msg": f"flood {i}"}) for i in range(300_000)
                )
                lines = [*lines, *flood]
            put(emulator, bucket, "logs/checkout/app.log.gz", lines)
            return {"endpoint_url": emulator.url, "anonymous": True, "bucket": bucket, "prefix": "logs/checkout/"}

        return make

    @pytest.fixture
    def broken_source(self) -> Broken:
        url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
        return Broken({"endpoint_url": url, "anonymous": True, "bucket": "logs"}, target=url)


def test_objects_are_listed_across_pages_under_each_day_and_only_the_window_is_kept(emulator: GcsEmulator, pager: GcsPager) -> None:
    bucket = new_bucket(emulator)
    first = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    for i in range(12):
        at = first + timedelta(hours=i)
        put(
            emulator,
            bucket,
            f"logs/{at:%Y/%m/%d}/app-{i:02}.log.gz",
            [f"{stamp(at + timedelta(minutes=m))} ERROR part={i}.{m}" for m in (0, 30)],
        )
    put(emulator, bucket, "logs/2026/03/08/old.log", [f"{stamp(first + timedelta(hours=3))} ERROR a day outside the window"], gzipped=False)

    source = store(pager.url, bucket, prefix="logs/{date:%Y/%m/%d}/", page_size=3)
    events = list(source.events(datetime(2026, 3, 9, 22, 45, tzinfo=UTC), datetime(2026, 3, 10, 1, 0, tzinfo=UTC)))

    assert [e.raw.rpartition("=")[2] for e in events] == ["3.0", "3.30", "4.0", "4.30", "5.0"]
    assert events[0].attributes["object"] == f"gs://{bucket}/logs/2026/03/09/app-03.log.gz"
    # The 4 objects of the 9th in two pages of 3, the 8 of the 10th in three.
    assert [q["prefix"] for q in pager.listings] == [["logs/2026/03/09/"]] * 2 + [["logs/2026/03/10/"]] * 3
    assert ["pageToken" in q for q in pager.listings] == [False, True, False, True, True]


def test_rate_limiting_is_waited_out_and_then_read(emulator: GcsEmulator, pager: GcsPager) -> None:
    bucket = new_bucket(emulator)
    put(emulator, bucket, "logs/a.log", [f"{stamp(START + timedelta(minutes=i))} INFO line {i}" for i in range(5)])
    pager.script += [Refusal("list", 429, "rateLimitExceeded", "The rate of change requests to the bucket is too high")] * 2

    source = store(pager.url, bucket, prefix="logs/")

    assert [e.message for e in source.events(START, END)] == [f"line {i}" for i in range(5)]
    assert len(pager.listings) == 1 and source.account.api_calls == 3


def test_refused_credentials_are_one_degraded_entry_naming_the_role_to_grant(emulator: GcsEmulator, pager: GcsPager) -> None:
    bucket = new_bucket(emulator)
    pager.script.append(Refusal("list", 403, "forbidden", "caller does not have storage.objects.list access to the bucket"))

    events, degraded = engine_read(store(pager.url, bucket))

    assert events == 0
    (entry,) = [d for d in degraded if "refused" in d.reason]
    assert entry.component == "logs:gcs"
    assert "refused the credentials (403: caller does not have storage.objects.list access" in entry.reason
    assert "roles/storage.objectViewer" in entry.reason and "\n" not in entry.reason


def test_a_missing_bucket_is_a_source_error_naming_it(emulator: GcsEmulator) -> None:
    with pytest.raises(SourceError, match=f"Cloud Storage at {emulator.url} has no bucket no-such-bucket \\(404\\)"):
        list(store(emulator.url, "no-such-bucket").events(START, END))


def test_slow_answers_end_at_the_deadline_with_the_objects_read_marked_truncated(emulator: GcsEmulator, pager: GcsPager) -> None:
    bucket = new_bucket(emulator)
    for i in range(6):
        put(emulator, bucket, f"logs/{i}.log", [f"{stamp(START + timedelta(minutes=i))} INFO object {i}"])
    pager.slow_after, pager.slow_s = 4, 1.5

    source = store(pager.url, bucket, prefix="logs/", deadline_s=2.5, timeout_s=1.0, retries=3)
    events = list(source.events(START, END))

    # The listing, the bucket lookup the client makes once, and two objects answer at once; the third times out.
    assert [e.message for e in events] == ["object 0", "object 1"]
    assert source.account.truncated is not None and "broke off" in source.account.truncated


def test_without_credentials_the_build_reads_nothing_and_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    source = GcsLogs(GcsOptions.model_validate({"bucket": "logs", "endpoint_url": "http://127.0.0.1:9", "cache_ttl_s": 0}))

    with pytest.raises(SourceError):
        list(source.events(START, END))


# --- end to end: a public bundle's logs as gzip objects give the findings its files give --------------------------


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_in_cloud_storage_gives_the_findings_of_its_files(bundle: Path, emulator: GcsEmulator, tmp_path: Path) -> None:
    bucket = new_bucket(emulator)
    for path in sorted((bundle / "logs").iterdir()):
        emulator.client().bucket(bucket).blob(f"{bundle.name}/{path.name}.gz").upload_from_string(gzip.compress(path.read_bytes()))

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    stored = {
        "kind": "gcs",
        "endpoint_url": emulator.url,
        "anonymous": True,
        "bucket": bucket,
        "prefix": f"{bundle.name}/",
        "cache_ttl_s": 0,
    }
    from_gcs = investigate(bundle, [stored], tmp_path)

    assert findings(from_gcs) == findings(from_files)
    (read,) = from_gcs["log_reads"]
    assert read["truncated"] is None and read["events"] > 1000
