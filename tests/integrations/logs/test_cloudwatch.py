"""The `cloudwatch` kind through boto3 against moto in server mode, and a front that throttles, refuses and stalls like AWS."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundle_logs import BUNDLES, entries, findings, investigate
from standin_aws import Answer, AwsFront, MotoServer, insights_status, json_error, seed_events, throttled, use_loopback_credentials
from standin_github import closed_port

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options, build
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs import cloudwatch, gcs, s3
from integrations.logs.cloudwatch import CloudWatchLogs, CloudWatchOptions, stream_fields
from integrations.plugin import SourceKind
from integrations.registry import ServiceSources
from integrations.roles import LOGS

START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_GROUPS = itertools.count()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_loopback_credentials(monkeypatch, tmp_path, "us-east-1")


@pytest.fixture
def front(moto: MotoServer) -> Iterator[AwsFront]:
    server = AwsFront(moto.url).start()
    yield server
    server.stop()


def new_group() -> str:
    return f"/test/checkout-{next(_GROUPS)}"


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def json_line(record: LogRecord) -> str:
    return json.dumps({"time": record.ts.isoformat() if record.ts else None, "level": record.level, "msg": record.message})


def store(url: str, group: str | list[str], **options: Any) -> CloudWatchLogs:
    where = {"log_groups": group} if isinstance(group, list) else {"log_group": group}
    return CloudWatchLogs(
        CloudWatchOptions.model_validate({"endpoint_url": url, "region": "us-east-1", "cache_ttl_s": 0, **where, **options})
    )


def engine_read(source: Any) -> tuple[int, list[Degradation], list[dict[str, Any]]]:
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="checkout", created_at=END),
        service="checkout",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [source]}),
    )
    degraded: list[Degradation] = []
    reads: list[dict[str, Any]] = []
    stats = read_logs(inputs, lambda *_: None, degraded, reads)
    return stats.events, degraded, reads


class TestCloudWatchContract(LogStoreContract):
    kind = cloudwatch.KIND

    @pytest.fixture
    def make_source(self, moto: MotoServer) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            group = new_group()
            # CloudWatch keeps each stream's events in time order; several streams are merged by the API.
            for stream, record in enumerate(r for r in records if r.ts is not None):
                assert record.ts is not None
                seed_events(group, f"stream-{stream}", [(ms(record.ts), json_line(record))])
            if endless:
                first = min(ms(r.ts) for r in records if r.ts is not None)
                flood = ((first + 1 + i, json.dumps({"level": "info", "msg": f"flood {i}"})) for i in range(50_000))
                seed_events(group, "flood", flood)
            return {"endpoint_url": moto.url, "region": "us-east-1", "log_group": group}

        return make

    @pytest.fixture(params=["unreachable", "credentials refused"])
    def broken_source(self, request: pytest.FixtureRequest, front: AwsFront) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
            return Broken({"endpoint_url": url, "region": "us-east-1", "log_group": "/test/any"}, target=url)
        front.script += [json_error(400, "UnrecognizedClientException", "The security token included in the request is invalid.")] * 3
        url = f"{front.url}/{SECRET_DIR}"
        return Broken({"endpoint_url": url, "region": "us-east-1", "log_group": "/test/any"}, target=url)


def test_a_window_is_read_across_pages_with_next_token_in_time_order(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "api-a", [(ms(START) + 2000 * i, f"ERROR payment failed order={i}") for i in range(0, 25, 2)])
    seed_events(group, "api-b", [(ms(START) + 2000 * i, f"ERROR payment failed order={i}") for i in range(1, 25, 2)])
    seed_events(group, "api-a", [(ms(END) + 1, "after the window"), (ms(START) - 1, "before the window")])

    source = store(front.url, group, page_size=10)
    events = list(source.events(START, END))

    assert [e.raw.rpartition("=")[2] for e in events] == [str(i) for i in range(25)]
    assert [e.ts for e in events] == [START + timedelta(seconds=2 * i) for i in range(25)]
    calls = front.calls("FilterLogEvents")
    assert len(calls) == 3 and source.account.api_calls == 3
    assert calls[0].body["startTime"] == ms(START) and calls[0].body["endTime"] == ms(END) and calls[0].body["limit"] == 10
    assert "nextToken" not in calls[0].body and calls[1].body["nextToken"] and calls[2].body["nextToken"] != calls[1].body["nextToken"]
    assert {e.attributes["logStreamName"] for e in events} == {"api-a", "api-b"}


def test_several_groups_are_merged_by_time_and_the_stream_prefix_narrows_them(moto: MotoServer) -> None:
    first, second = new_group(), new_group()
    seed_events(first, "checkout-1", [(ms(START) + 1000 * i, f"first {i}") for i in range(0, 10, 2)])
    seed_events(second, "checkout-2", [(ms(START) + 1000 * i, f"second {i}") for i in range(1, 10, 2)])
    seed_events(second, "billing-1", [(ms(START) + 500, "not ours")])

    source = store(moto.url, [first, second], log_stream_prefix="checkout-", page_size=3)
    events = list(source.events(START, END))

    assert [e.message for e in events] == [f"{('first', 'second')[i % 2]} {i}" for i in range(10)]
    assert {e.attributes["logGroupName"] for e in events} == {first, second}


def test_stream_names_fill_the_pod_or_host_and_json_messages_their_fields(moto: MotoServer) -> None:
    group = new_group()
    pod_stream = "kube.var.log.containers.checkout-7d9f8b6c5d-x2kqz_shop_app-" + "a" * 64 + ".log"
    seed_events(group, pod_stream, [(ms(START) + 1000, json.dumps({"level": "error", "msg": "upstream failed", "status": 502}))])
    seed_events(group, "i-0abc1234def567890", [(ms(START) + 2000, "kernel: out of memory")])

    pod_event, host_event = store(moto.url, group).events(START, END)

    assert (pod_event.pod, pod_event.status, pod_event.level, pod_event.message) == (
        "checkout-7d9f8b6c5d-x2kqz",
        502,
        "error",
        "upstream failed",
    )
    assert pod_event.attributes["namespace"] == "shop" and pod_event.attributes["container"] == "app"
    assert host_event.host == "i-0abc1234def567890" and host_event.ts == START + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("stream", "fields"),
    [
        ("checkout-7d9f8b6c5d-x2kqz_shop_app-" + "0" * 64, {"pod": "checkout-7d9f8b6c5d-x2kqz", "namespace": "shop", "container": "app"}),
        ("ip-10-0-1-23.eu-west-1.compute.internal", {"hostname": "ip-10-0-1-23.eu-west-1.compute.internal"}),
        ("ecs/checkout/0123456789abcdef0123456789abcdef", {"pod": "0123456789abcdef0123456789abcdef", "container": "checkout"}),
        ("checkout-7d9f8b6c5d-x2kqz", {"pod": "checkout-7d9f8b6c5d-x2kqz"}),
        ("2026/03/10/[$LATEST]0123456789abcdef", {}),
        ("application", {}),
    ],
)
def test_stream_names_are_read_by_the_agent_that_named_them(stream: str, fields: dict[str, str]) -> None:
    assert stream_fields(stream) == fields


def test_throttling_is_waited_out_without_botocore_retrying_on_its_own(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START) + 1000 * i, f"line {i}") for i in range(5)])
    front.script += [throttled(), throttled()]

    source = store(front.url, group)

    assert len(list(source.events(START, END))) == 5
    # Two refusals and the answer: botocore did not retry behind the session's back.
    assert len(front.calls("FilterLogEvents")) == 3 == source.account.api_calls


def test_throttling_past_the_retries_is_a_source_error_saying_so(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START), "line")])
    front.script += [throttled()] * 3

    with pytest.raises(SourceError, match="throttled the read \\(ThrottlingException: Rate exceeded\\)"):
        list(store(front.url, group, retries=2).events(START, END))
    assert len(front.calls("FilterLogEvents")) == 3


def test_a_missing_log_group_is_one_degraded_entry_naming_it(moto: MotoServer) -> None:
    events, degraded, reads = engine_read(store(moto.url, "/test/no-such-group"))

    assert events == 0 and reads[0]["events"] == 0
    (entry,) = [d for d in degraded if "ResourceNotFoundException" in d.reason]
    assert entry.component == "logs:cloudwatch"
    assert f"CloudWatch Logs at {moto.url} has no log group /test/no-such-group (ResourceNotFoundException)" in entry.reason
    assert "\n" not in entry.reason and "Traceback" not in entry.reason


def test_refused_credentials_name_the_permission_to_grant(front: AwsFront) -> None:
    group = new_group()
    front.script.append(json_error(400, "AccessDeniedException", f"User is not authorized to perform: logs:FilterLogEvents on {group}"))

    with pytest.raises(SourceError) as raised:
        list(store(front.url, group).events(START, END))

    message = str(raised.value)
    assert "refused the credentials (AccessDeniedException: User is not authorized" in message
    assert "they need logs:FilterLogEvents" in message and "\n" not in message


def test_slow_answers_end_at_the_deadline_with_the_pages_read_marked_truncated(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START) + 1000 * i, f"line {i}") for i in range(100)])
    front.slow_after, front.slow_s = 2, 1.5

    source = store(front.url, group, page_size=10, deadline_s=2.5, timeout_s=1.0, retries=3)
    events = list(source.events(START, END))

    assert [e.message for e in events] == [f"line {i}" for i in range(20)]
    assert source.account.truncated is not None and "did not answer in time" in source.account.truncated


def test_a_capped_read_through_the_engine_keeps_the_newest_slices(moto: MotoServer) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START) + 10_000 * i, f"ERROR payment failed order={i}") for i in range(360)])

    events, degraded, reads = engine_read(store(moto.url, group, max_events=100))

    assert events == 100
    (read,) = reads
    assert read["truncated"] == "reached max_events (100)" and datetime.fromisoformat(read["covered_from"]) >= END - timedelta(minutes=20)
    assert any(d.reason.startswith("truncated: reached max_events (100)") for d in degraded)


def test_a_second_read_of_the_same_window_comes_from_the_cache(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START) + 1000 * i, f"line {i}") for i in range(5)])
    first, again = store(front.url, group, cache_ttl_s=300), store(front.url, group, cache_ttl_s=300)

    read = [e.raw for e in first.events(START, END)]

    assert [e.raw for e in again.events(START, END)] == read == [f"line {i}" for i in range(5)]
    assert len(front.calls("FilterLogEvents")) == 1
    assert (again.account.api_calls, again.account.cached_slices) == (0, 1)


def test_the_options_name_exactly_one_way_to_the_groups() -> None:
    with pytest.raises(ValueError, match="exactly one of log_group or log_groups"):
        CloudWatchOptions.model_validate({"log_group": "/a", "log_groups": ["/b"]})
    with pytest.raises(ValueError, match="exactly one of log_group or log_groups"):
        CloudWatchOptions.model_validate({})
    with pytest.raises(ValueError, match="with insights_query, filter in the query"):
        CloudWatchOptions.model_validate({"log_group": "/a", "filter_pattern": "ERROR", "insights_query": "filter x"})


def test_a_profile_that_does_not_exist_is_a_one_line_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="The config profile \\(nobody\\) could not be found"):
        list(build(cloudwatch.KIND, {"log_group": "/a", "profile": "nobody", "region": "us-east-1"}, tmp_path).events(START, END))


# --- Logs Insights ----------------------------------------------------------------------------------------------


def test_an_insights_query_reads_the_window_in_seconds(front: AwsFront) -> None:
    group = new_group()
    # moto's Insights runs fields, sort and limit only: the filter is checked as sent, not as applied.
    seed_events(group, "checkout-1", [(ms(START) + 1000 * i, f"ERROR payment failed order={i}") for i in range(5)])
    seed_events(group, "checkout-1", [(ms(END) + 1000, "ERROR after the window")])

    source = store(front.url, group, insights_query="filter @message like /ERROR/")
    events = list(source.events(START, END))

    assert [e.raw for e in events] == [f"ERROR payment failed order={i}" for i in range(5)]
    assert [e.ts for e in events] == [START + timedelta(seconds=i) for i in range(5)]
    (started,) = front.calls("StartQuery")
    assert started.body["startTime"] == int(START.timestamp()) and started.body["endTime"] == int(END.timestamp())
    assert "filter @message like /ERROR/ | sort @timestamp asc" in started.body["queryString"]


def test_a_full_insights_answer_is_followed_by_a_query_from_its_last_second(front: AwsFront) -> None:
    group = new_group()
    # Two and a half full Insights answers, four events to the millisecond: each full answer ends inside a second.
    seed_events(group, "s", [(ms(START) + i // 4, f"event {i}") for i in range(25_000)])

    source = store(front.url, group, insights_query="filter @message like /event/")
    events = list(source.events(START, END))

    assert [e.raw for e in events] == [f"event {i}" for i in range(25_000)]
    starts = [call.body["startTime"] for call in front.calls("StartQuery")]
    assert starts == [int(START.timestamp()), int(START.timestamp()) + 2, int(START.timestamp()) + 4]


def test_a_scheduled_then_running_query_is_polled_until_complete(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START) + 1000, "ERROR late")])
    front.script += [insights_status("Scheduled"), insights_status("Running")]

    source = store(front.url, group, insights_query="filter @message like /ERROR/", poll_s=0.1)

    assert [e.raw for e in source.events(START, END)] == ["ERROR late"]
    assert len(front.calls("GetQueryResults")) == 3


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("Failed", "failed: check its syntax"),
        ("Cancelled", "was cancelled"),
        ("Timeout", "timed out in Logs Insights"),
        ("Unknown", "ended with status Unknown"),
    ],
)
def test_a_query_that_ends_without_results_is_a_source_error_saying_how(front: AwsFront, status: str, said: str) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START), "ERROR x")])
    front.script.append(insights_status(status))

    with pytest.raises(SourceError, match=said):
        list(store(front.url, group, insights_query="filter @message like /x/").events(START, END))
    assert front.calls("StopQuery") == []


def test_a_query_still_running_at_the_deadline_is_stopped_and_said(front: AwsFront) -> None:
    group = new_group()
    seed_events(group, "s", [(ms(START), "ERROR x")])
    front.script += [insights_status("Running")] * 50 + [Answer("StopQuery", 200, b'{"success": true}')]

    with pytest.raises(SourceError, match="still Running at the deadline of 1s"):
        list(store(front.url, group, insights_query="filter @message like /x/", deadline_s=1, poll_s=0.2).events(START, END))
    assert len(front.calls("StopQuery")) == 1


# --- end to end: a public bundle's logs in CloudWatch give the findings its files give ----------------------------


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_in_cloudwatch_gives_the_findings_of_its_files(bundle: Path, moto: MotoServer, tmp_path: Path) -> None:
    group = f"/bundles/{bundle.name}"
    by_file: dict[str, list[tuple[int, str]]] = {}
    for entry in entries(bundle):
        by_file.setdefault(entry.file, []).append((ms(entry.ts), entry.text))
    for name, events in by_file.items():
        # A stream keeps its events in time order, as CloudWatch requires of each put.
        seed_events(group, name, sorted(events, key=lambda e: e[0]))

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    cloud = {"kind": "cloudwatch", "endpoint_url": moto.url, "region": "us-east-1", "log_group": group, "page_size": 500, "cache_ttl_s": 0}
    from_cloudwatch = investigate(bundle, [cloud], tmp_path)

    assert findings(from_cloudwatch) == findings(from_files)
    (read,) = from_cloudwatch["log_reads"]
    assert read["truncated"] is None and read["events"] > 1000 and read["api_calls"] > 8


# --- the examples the README and services.example.yaml give ---------------------------------------------------


@pytest.mark.parametrize("kind", [cloudwatch.KIND, s3.KIND, gcs.KIND], ids=lambda kind: kind.name)
def test_the_commented_catalog_example_and_the_readme_example_are_valid_options(kind: SourceKind[Any, Any]) -> None:
    repo = Path(__file__).resolve().parents[3]
    commented = [
        line.strip().removeprefix("#").strip().removeprefix("- ")
        for line in (repo / "services.example.yaml").read_text().splitlines()
        if line.strip().startswith(f"#   - {{kind: {kind.name},")
    ]
    readme = (repo / "README.md").read_text()
    block = readme[readme.index("### Logs in CloudWatch, S3 and Cloud Storage") :].split("```yaml\n")[1].split("```")[0]
    listed = [entry for entry in yaml.safe_load(block)["services"]["checkout"]["logs"] if entry["kind"] == kind.name]

    examples = [yaml.safe_load(line) for line in commented] + listed
    assert len(examples) == 2
    for example in examples:
        kind.options.model_validate({k: v for k, v in example.items() if k != "kind"})
