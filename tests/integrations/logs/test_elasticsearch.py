"""The `elasticsearch` kind through elasticsearch-py against the loopback stand-in: the contract, PIT paging, errors, the deadline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_logs import BUNDLES, entries, findings, investigate
from standin_elasticsearch import Flood, SearchStandin
from standin_github import closed_port

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options, build
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs import elasticsearch as es_kind
from integrations.logs.elasticsearch import ElasticsearchStore
from integrations.registry import ServiceSources
from integrations.roles import LOGS

KEY_ENV = "IR_TEST_ES_API_KEY"
KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def document(record: LogRecord, pod: str = "checkout-7d9f") -> dict[str, Any]:
    line = json.dumps({"time": record.ts.isoformat() if record.ts else None, "level": record.level, "msg": record.message})
    assert record.ts is not None
    return {"@timestamp": iso(record.ts), "message": line, "kubernetes": {"pod": {"name": pod}, "namespace": "shop"}}


@pytest.fixture
def standins() -> Iterator[Callable[..., SearchStandin]]:
    started: list[SearchStandin] = []

    def start(**kwargs: Any) -> SearchStandin:
        server = SearchStandin(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def store(server: SearchStandin, **options: Any) -> ElasticsearchStore:
    return ElasticsearchStore(
        es_kind.ElasticsearchOptions.model_validate({"url": server.url, "index": "logs-checkout-*", "cache_ttl_s": 0, **options})
    )


def docs(count: int, *, every: timedelta = timedelta(seconds=10)) -> list[dict[str, Any]]:
    return [{"@timestamp": iso(START + every * i), "message": f"request {i} served", "service": {"name": "checkout"}} for i in range(count)]


class TestElasticsearchContract(LogStoreContract):
    kind = es_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., SearchStandin]) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = standins()
            server.index("logs-checkout-2026.03.10", [document(r) for r in records if r.ts is not None])
            if endless:
                first = min(r.ts for r in records if r.ts is not None)
                server.floods.append(Flood("logs-checkout-2026.03.10", first + timedelta(milliseconds=1)))
            return {"url": server.url, "index": "logs-checkout-*"}

        return make

    @pytest.fixture(params=["unreachable", "credentials refused"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., SearchStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
            return Broken({"url": url, "index": "logs-*"}, target=url)
        server = standins(api_key=KEY)
        monkeypatch.setenv(KEY_ENV, "not-the-key")
        url = f"{server.url}/{SECRET_DIR}"
        return Broken({"url": url, "index": "logs-*", "api_key_env": KEY_ENV}, target=url)


def _engine_read(source: Any) -> tuple[int, list[Degradation]]:
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


def test_pages_follow_search_after_in_a_point_in_time_that_is_closed_at_the_end(standins: Callable[..., SearchStandin]) -> None:
    server = standins()
    # Pairs of documents in the same millisecond: only the tiebreaker tells them apart across a page boundary.
    server.index("logs-checkout-2026.03.10", docs(17) + docs(18))
    server.index("logs-other", docs(5))

    source = store(server, page_size=10)
    events = list(source.events(START, END))

    assert len(events) == 35
    assert [e.message for e in events[:4]] == ["request 0 served", "request 0 served", "request 1 served", "request 1 served"]
    assert [e.ts for e in events] == sorted(e.ts for e in events if e.ts is not None)
    searches = server.searches
    assert len(searches) == 4 and source.account.api_calls == 4 + 1
    assert all("from" not in s.body and s.body["pit"]["id"] for s in searches)
    assert "search_after" not in searches[0].body and searches[1].body["search_after"] == [int(START.timestamp() * 1000) + 40_000, 21]
    assert searches[0].body["sort"] == [{"@timestamp": {"order": "asc"}}, {"_shard_doc": {"order": "asc"}}]
    assert server.open_pits == {}


def test_a_lucene_string_and_a_query_dsl_mapping_both_narrow_the_read(standins: Callable[..., SearchStandin]) -> None:
    server = standins()
    server.index("logs-checkout-1", [{**d, "level": "error" if i % 2 else "info"} for i, d in enumerate(docs(10))])

    lucene = store(server, query="level:error")
    dsl = store(server, query={"term": {"level": "error"}})

    assert [e.message for e in lucene.events(START, END)] == [f"request {i} served" for i in (1, 3, 5, 7, 9)]
    assert [e.message for e in dsl.events(START, END)] == [f"request {i} served" for i in (1, 3, 5, 7, 9)]
    assert server.searches[0].body["query"]["bool"]["must"] == [{"query_string": {"query": "level:error"}}]
    window = server.searches[0].body["query"]["bool"]["filter"][0]["range"]["@timestamp"]
    assert (window["gte"], window["lte"]) == (START.isoformat(), END.isoformat())


def test_source_fields_become_the_event_fields_flattened_with_dots(standins: Callable[..., SearchStandin]) -> None:
    server = standins()
    server.index(
        "logs-checkout-1",
        [
            {
                "@timestamp": "2026-03-10T11:30:00.123456789Z",
                "message": "upstream answered 502",
                "http": {"response": {"status_code": 502}},
                "kubernetes": {"pod": {"name": "checkout-7d9f-x2"}},
                "service": {"name": "checkout"},
                "trace": {"id": "4bf92f3577b34da6"},
                "tags": ["edge", "eu"],
            }
        ],
    )

    (event,) = store(server).events(START, END)

    assert event.ts == datetime(2026, 3, 10, 11, 30, 0, 123456, tzinfo=UTC)
    assert event.pod == "checkout-7d9f-x2" and event.service == "checkout" and event.trace_id == "4bf92f3577b34da6"
    assert event.attributes["http.response.status_code"] == "502" and event.attributes["tags"] == '["edge", "eu"]'


def test_a_429_with_retry_after_is_waited_out_and_then_read(standins: Callable[..., SearchStandin]) -> None:
    server = standins()
    server.index("logs-checkout-1", docs(5))
    server.rate_limit(times=2, retry_after_s=0)

    source = store(server)

    assert len(list(source.events(START, END))) == 5
    assert source.account.api_calls == 2 + 1 + 1


def test_refused_credentials_are_one_degraded_entry_and_no_traceback(
    standins: Callable[..., SearchStandin], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = standins(api_key=KEY)
    server.index("logs-checkout-1", docs(5))
    monkeypatch.setenv(KEY_ENV, "expired")

    events, degraded = _engine_read(store(server, api_key_env=KEY_ENV))

    assert events == 0
    (entry,) = [d for d in degraded if d.component == "logs:elasticsearch"]
    assert "refused the credentials (401: security_exception" in entry.reason and "Traceback" not in entry.reason
    monkeypatch.setenv(KEY_ENV, KEY)
    assert _engine_read(store(server, api_key_env=KEY_ENV))[0] == 5


def test_a_missing_index_is_a_source_error_naming_it(standins: Callable[..., SearchStandin]) -> None:
    server = standins()

    with pytest.raises(SourceError, match=r"has no index logs-nowhere \(index_not_found_exception: no such index \[logs-nowhere\]\)"):
        list(store(server, index="logs-nowhere").events(START, END))


def test_slow_answers_end_at_the_deadline_with_the_pages_read_marked_truncated(standins: Callable[..., SearchStandin]) -> None:
    server = standins(delay_s=1.5, slow_after=2)
    server.index("logs-checkout-1", docs(100))

    source = store(server, page_size=10, deadline_s=2.0, timeout_s=1.0)
    events = list(source.events(START, END))

    assert [e.message for e in events] == [f"request {i} served" for i in range(20)]
    assert source.account.truncated is not None and "did not answer within" in source.account.truncated


def test_a_server_that_is_not_elasticsearch_is_refused_by_name(standins: Callable[..., SearchStandin]) -> None:
    # A proxy, or OpenSearch answering a PIT request the way Elasticsearch would: a 2xx without Elastic's product header.
    server = standins(flavor="opensearch")
    server.index("logs-checkout-1", docs(3))
    server.foreign_pit = True

    with pytest.raises(SourceError, match=r"is not Elasticsearch .* use the opensearch kind"):
        list(store(server).events(START, END))


def test_an_unset_key_variable_fails_the_read_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    source = build(es_kind.KIND, {"url": "http://127.0.0.1:1", "index": "logs-*", "api_key_env": KEY_ENV}, tmp_path)

    with pytest.raises(SourceError, match=f"elasticsearch API key: environment variable {KEY_ENV} is not set"):
        list(source.events(START, END))


# --- end to end: a public bundle's logs indexed in Elasticsearch give the findings the same files give ----------


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_indexed_in_elasticsearch_gives_the_findings_of_its_files(
    bundle: Path, standins: Callable[..., SearchStandin], tmp_path: Path
) -> None:
    server = standins()
    server.index(
        f"logs-{bundle.name}",
        [
            {"@timestamp": e.ts.isoformat().replace("+00:00", "Z"), "message": e.text, "log": {"file": {"path": e.file}}}
            for e in entries(bundle)
        ],
    )

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    from_es = investigate(
        bundle, [{"kind": "elasticsearch", "url": server.url, "index": "logs-pub-*", "page_size": 500, "cache_ttl_s": 0}], tmp_path
    )

    assert findings(from_es) == findings(from_files)
    (read,) = from_es["log_reads"]
    assert read["truncated"] is None and read["events"] > 1000 and len(server.searches) > 8
    assert server.open_pits == {}
