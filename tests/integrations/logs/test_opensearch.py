"""The `opensearch` kind through opensearch-py against the stand-in's OpenSearch flavour: the contract, PIT paging, errors."""

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

from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from integrations.errors import SourceError
from integrations.logs import opensearch as os_kind
from integrations.logs.opensearch import OpenSearchStore

USER_ENV, PASSWORD_ENV = "IR_TEST_OS_USER", "IR_TEST_OS_PASSWORD"
START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def standins() -> Iterator[Callable[..., SearchStandin]]:
    started: list[SearchStandin] = []

    def start(**kwargs: Any) -> SearchStandin:
        server = SearchStandin(flavor="opensearch", **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv(USER_ENV, "reader")
    monkeypatch.setenv(PASSWORD_ENV, "correct-horse")
    return {"username_env": USER_ENV, "password_env": PASSWORD_ENV}


def store(server: SearchStandin, **options: Any) -> OpenSearchStore:
    return OpenSearchStore(os_kind.OpenSearchOptions.model_validate({"url": server.url, "index": "logs-*", "cache_ttl_s": 0, **options}))


def docs(count: int) -> list[dict[str, Any]]:
    return [{"@timestamp": iso(START + timedelta(seconds=10 * i)), "message": f"request {i} served"} for i in range(count)]


class TestOpenSearchContract(LogStoreContract):
    kind = os_kind.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., SearchStandin]) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = standins()
            server.index(
                "logs-checkout",
                [
                    {"@timestamp": iso(r.ts), "message": json.dumps({"time": r.ts.isoformat(), "level": r.level, "msg": r.message})}
                    for r in records
                    if r.ts is not None
                ],
            )
            if endless:
                first = min(r.ts for r in records if r.ts is not None)
                server.floods.append(Flood("logs-checkout", first + timedelta(milliseconds=1)))
            return {"url": server.url, "index": "logs-checkout"}

        return make

    @pytest.fixture(params=["unreachable", "credentials refused"])
    def broken_source(self, request: pytest.FixtureRequest, standins: Callable[..., SearchStandin], credentials: dict[str, str]) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
            return Broken({"url": url, "index": "logs-*"}, target=url)
        server = standins(basic=("reader", "another-password"))
        url = f"{server.url}/{SECRET_DIR}"
        return Broken({"url": url, "index": "logs-*", **credentials}, target=url)


def test_pages_follow_search_after_on_time_then_id_in_a_pit_that_is_deleted(
    standins: Callable[..., SearchStandin], credentials: dict[str, str]
) -> None:
    server = standins(basic=("reader", "correct-horse"))
    server.index("logs-checkout", docs(12) + docs(13))

    source = store(server, page_size=10, **credentials)
    events = list(source.events(START, END))

    assert len(events) == 25 and [e.ts for e in events] == sorted(e.ts for e in events if e.ts is not None)
    searches = server.searches
    assert len(searches) == 3 and all("from" not in s.body for s in searches)
    assert searches[0].body["sort"][1] == {"_id": {"order": "asc"}} and isinstance(searches[1].body["search_after"][1], str)
    assert server.open_pits == {}


def test_a_429_then_an_answer_reads_everything(standins: Callable[..., SearchStandin]) -> None:
    server = standins()
    server.index("logs-checkout", docs(5))
    server.rate_limit(times=1)

    source = store(server)

    assert len(list(source.events(START, END))) == 5 and source.account.api_calls == 3


def test_a_missing_index_is_a_source_error_naming_it(standins: Callable[..., SearchStandin]) -> None:
    server = standins()

    with pytest.raises(SourceError, match=r"OpenSearch at .* has no index logs-nowhere"):
        list(store(server, index="logs-nowhere").events(START, END))


def test_slow_answers_end_at_the_deadline_with_the_pages_read_marked_truncated(standins: Callable[..., SearchStandin]) -> None:
    server = standins(delay_s=1.5, slow_after=1)
    server.index("logs-checkout", docs(50))

    source = store(server, page_size=10, deadline_s=2.0, timeout_s=1.0)
    events = list(source.events(START, END))

    assert [e.message for e in events] == [f"request {i} served" for i in range(10)]
    assert source.account.truncated is not None and "did not answer within" in source.account.truncated


def test_an_api_key_is_no_opensearch_option() -> None:
    with pytest.raises(ValueError, match="api_key_env"):
        os_kind.OpenSearchOptions.model_validate({"url": "http://os:9200", "index": "logs", "api_key_env": "KEY"})


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
def test_a_bundle_indexed_in_opensearch_gives_the_findings_of_its_files(standins: Callable[..., SearchStandin], tmp_path: Path) -> None:
    bundle = BUNDLES[0]
    server = standins()
    server.index(f"logs-{bundle.name}", [{"@timestamp": iso(e.ts), "message": e.text} for e in entries(bundle)])

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    from_os = investigate(bundle, [{"kind": "opensearch", "url": server.url, "index": "logs-pub-*", "cache_ttl_s": 0}], tmp_path)

    assert findings(from_os) == findings(from_files)
    assert from_os["log_reads"][0]["events"] > 1000
