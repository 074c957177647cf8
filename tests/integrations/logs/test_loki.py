"""The `loki` kind through httpx against the loopback Loki stand-in: the log-store contract, paging, errors, the deadline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bundle_logs import BUNDLES, entries, findings, investigate
from standin_github import closed_port
from standin_loki import Flood, LokiStandin

from agents.evidence.model import EvidenceInputs
from agents.evidence.reading import read_logs
from contracts import SECRET_DIR, Broken, LogRecord, LogStoreContract, MakeLogSource, Options, build
from core.alert import Alert
from core.degraded import Degradation
from integrations.errors import SourceError
from integrations.logs import loki
from integrations.logs.loki import LokiStore, _ns
from integrations.registry import ServiceSources
from integrations.roles import LOGS

TOKEN_ENV = "IR_TEST_LOKI_TOKEN"
TOKEN = "loki-standin-token"
START = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
END = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def json_line(record: LogRecord) -> str:
    return json.dumps({"time": record.ts.isoformat() if record.ts else None, "level": record.level, "msg": record.message})


@pytest.fixture
def standins() -> Iterator[Callable[..., LokiStandin]]:
    started: list[LokiStandin] = []

    def start(**kwargs: Any) -> LokiStandin:
        server = LokiStandin(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def store(server: LokiStandin, **options: Any) -> LokiStore:
    return LokiStore(loki.LokiOptions.model_validate({"url": server.url, "query": '{app="checkout"}', "cache_ttl_s": 0, **options}))


def at(seconds: float) -> int:
    return _ns(START) + int(seconds * 1e9)


class TestLokiContract(LogStoreContract):
    kind = loki.KIND

    @pytest.fixture
    def make_source(self, standins: Callable[..., LokiStandin]) -> MakeLogSource:
        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = standins()
            server.push({"app": "checkout", "pod": "checkout-7d9f"}, [(_ns(r.ts), json_line(r)) for r in records if r.ts is not None])
            if endless:
                first = min(_ns(r.ts) for r in records if r.ts is not None)
                server.floods.append(Flood({"app": "checkout", "pod": "checkout-flood"}, from_ns=first + 1))
            return {"url": server.url, "query": '{app="checkout"}'}

        return make

    @pytest.fixture(params=["unreachable", "credentials refused"])
    def broken_source(
        self, request: pytest.FixtureRequest, standins: Callable[..., LokiStandin], monkeypatch: pytest.MonkeyPatch
    ) -> Broken:
        if request.param == "unreachable":
            url = f"http://127.0.0.1:{closed_port()}/{SECRET_DIR}"
            return Broken({"url": url, "query": '{app="checkout"}'}, target=url)
        server = standins(token=TOKEN)
        monkeypatch.setenv(TOKEN_ENV, "not-the-token")
        url = f"{server.url}/{SECRET_DIR}"
        return Broken({"url": url, "query": '{app="checkout"}', "token_env": TOKEN_ENV}, target=url)


def test_pages_move_start_to_the_last_nanosecond_and_drop_what_they_already_gave(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    server.push({"app": "checkout", "pod": "a"}, [(at(i), f"line a{i}") for i in range(0, 30, 2)])
    server.push({"app": "checkout", "pod": "b"}, [(at(i), f"line b{i}") for i in range(1, 30, 2)])
    # Three entries of one nanosecond, cut across a page boundary.
    server.push({"app": "checkout", "pod": "c"}, [(at(9), f"line c{k}") for k in range(3)])

    source = store(server, page_size=10)
    events = list(source.events(START, END))

    alternating = [f"line {'ab'[i % 2]}{i}" for i in range(30)]
    assert [e.message for e in events] == [*alternating[:10], "line c0", "line c1", "line c2", *alternating[10:]]
    assert len(events) == 33 and len({e.raw + (e.pod or "") for e in events}) == 33
    assert [e.ts for e in events] == sorted(e.ts for e in events)
    starts = [int(r.params["start"]) for r in server.queries]
    assert len(server.queries) >= 3 and starts[0] == _ns(START)
    assert all(r.params["direction"] == "forward" and r.params["limit"] == "10" for r in server.queries)
    assert all(int(r.params["end"]) == _ns(END) + 1 for r in server.queries)
    assert starts == sorted(starts) and starts[1] == at(9)
    assert source.account.api_calls == len(server.queries)


def test_more_entries_in_one_nanosecond_than_a_page_holds_are_skipped_and_said(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    server.push({"app": "checkout"}, [(at(1), f"burst {k}") for k in range(8)] + [(at(2), "after the burst")])

    source = store(server, page_size=4)
    messages = [e.message for e in source.events(START, END)]

    assert messages == ["burst 0", "burst 1", "burst 2", "burst 3", "after the burst"]
    assert source.account.partial and "more than 4 entries" in source.account.partial[0]


def test_stream_labels_fill_the_event_fields(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    labels = {"app": "checkout", "namespace": "shop", "pod": "checkout-7d9f-x2", "container": "app"}
    server.push(labels, [(at(5), "ERROR payment declined status=502")])

    (event,) = store(server).events(START, END)

    assert event.pod == "checkout-7d9f-x2" and event.service == "checkout"
    assert event.attributes["namespace"] == "shop" and event.attributes["container"] == "app"
    assert event.ts == START + timedelta(seconds=5) and event.level == "error"


def test_the_tenant_and_basic_auth_come_from_options_and_environment(
    standins: Callable[..., LokiStandin], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = standins(multi_tenant=True, basic=("12345", "glc_secret"))
    server.push({"app": "checkout"}, [(at(1), "theirs")], tenant="other")
    server.push({"app": "checkout"}, [(at(1), "ours")], tenant="shop")
    monkeypatch.setenv("IR_TEST_LOKI_USER", "12345")
    monkeypatch.setenv("IR_TEST_LOKI_PASSWORD", "glc_secret")

    source = store(server, org_id="shop", username_env="IR_TEST_LOKI_USER", password_env="IR_TEST_LOKI_PASSWORD")

    assert [e.message for e in source.events(START, END)] == ["ours"]
    assert server.queries[0].headers["x-scope-orgid"] == "shop"


def test_a_refused_token_is_one_degraded_entry_of_the_investigation(
    standins: Callable[..., LokiStandin], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = standins(token=TOKEN)
    server.push({"app": "checkout"}, [(at(i), f"line {i}") for i in range(5)])
    monkeypatch.setenv(TOKEN_ENV, "revoked")
    inputs = EvidenceInputs(
        alert=Alert(title="errors", service="checkout", created_at=END),
        service="checkout",
        window_start=START,
        window_end=END,
        sources=ServiceSources.holding({LOGS: [store(server, token_env=TOKEN_ENV)]}),
    )
    degraded: list[Degradation] = []

    stats = read_logs(inputs, lambda *_: None, degraded, [])

    assert stats.events == 0 and len(server.queries) == 1
    (entry,) = degraded
    assert entry.component == "logs:loki" and "refused the credentials (401: Unauthorized)" in entry.reason
    assert TOKEN not in entry.reason and "revoked" not in entry.reason


def test_a_missing_tenant_is_a_source_error_quoting_loki(standins: Callable[..., LokiStandin]) -> None:
    server = standins(multi_tenant=True)
    server.push({"app": "checkout"}, [(at(1), "ours")], tenant="shop")

    with pytest.raises(SourceError, match="refused the credentials \\(401: no org id\\)"):
        list(store(server).events(START, END))


def test_a_429_is_waited_out_and_then_read(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    server.push({"app": "checkout"}, [(at(i), f"line {i}") for i in range(5)])
    server.rate_limit(times=2, retry_after_s=0)

    source = store(server)

    assert len(list(source.events(START, END))) == 5
    assert source.account.api_calls == 3


def test_a_5xx_after_some_pages_keeps_them_and_marks_the_read_truncated(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    server.push({"app": "checkout"}, [(at(i), f"line {i}") for i in range(25)])
    source = store(server, page_size=10, retries=1)
    events = source.events(START, END)
    first_page = [next(events) for _ in range(10)]
    server.fail(503, times=5, message="too many outstanding requests")

    rest = list(events)

    assert len(first_page) == 10 and rest == []
    assert source.account.truncated is not None and "503: too many outstanding requests" in source.account.truncated


def test_a_bad_logql_query_is_a_source_error_naming_lokis_parse_error(standins: Callable[..., LokiStandin]) -> None:
    server = standins()

    with pytest.raises(SourceError) as raised:
        list(store(server, query="app=checkout").events(START, END))

    assert "rejected the query app=checkout: parse error at line 1, col 1" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_slow_answers_end_at_the_deadline_with_the_pages_read_marked_truncated(standins: Callable[..., LokiStandin]) -> None:
    server = standins(delay_s=1.5, slow_after=2)
    server.push({"app": "checkout"}, [(at(i), f"line {i}") for i in range(100)])

    source = store(server, page_size=10, deadline_s=2.0, timeout_s=1.0, retries=3)
    events = list(source.events(START, END))

    # Two fast pages: the second starts again at the first's last nanosecond, so it adds nine.
    assert [e.message for e in events] == [f"line {i}" for i in range(19)]
    assert source.account.truncated is not None and "did not answer within" in source.account.truncated


def test_a_metric_query_is_refused_with_what_to_do(standins: Callable[..., LokiStandin]) -> None:
    server = standins()
    with pytest.raises(SourceError, match="unexpected IDENTIFIER"):
        list(store(server, query='rate({app="checkout"}[5m])').events(START, END))


def test_credentials_options_are_checked() -> None:
    with pytest.raises(ValueError, match="go together"):
        loki.LokiOptions.model_validate({"url": "http://loki:3100", "query": '{a="b"}', "username_env": "LOKI_USER"})
    with pytest.raises(ValueError, match="either token_env"):
        loki.LokiOptions.model_validate(
            {"url": "http://loki:3100", "query": '{a="b"}', "token_env": "T", "username_env": "U", "password_env": "P"}
        )


def test_a_token_variable_that_is_unset_fails_the_read_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    source = build(loki.KIND, {"url": "http://127.0.0.1:1", "query": '{app="x"}', "token_env": TOKEN_ENV}, tmp_path)

    with pytest.raises(SourceError, match=f"loki token: environment variable {TOKEN_ENV} is not set"):
        list(source.events(START, END))


# --- end to end: a public bundle's logs pushed to Loki give the findings the same files give -------------------


@pytest.mark.slow
@pytest.mark.skipif(not BUNDLES, reason="public scenario bundles are not present")
@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_a_bundle_pushed_to_loki_gives_the_findings_of_its_files(
    bundle: Path, standins: Callable[..., LokiStandin], tmp_path: Path
) -> None:
    server = standins(max_entries=5000)
    by_file: dict[str, list[tuple[int, str]]] = {}
    for entry in entries(bundle):
        by_file.setdefault(entry.file, []).append((_ns(entry.ts), entry.text))
    for name, pushed in by_file.items():
        server.push({"job": bundle.name, "filename": f"/var/log/{name}"}, pushed)

    from_files = investigate(bundle, [{"kind": "files", "paths": [str(bundle / "logs")]}], tmp_path)
    from_loki = investigate(
        bundle, [{"kind": "loki", "url": server.url, "query": f'{{job="{bundle.name}"}}', "page_size": 200, "cache_ttl_s": 0}], tmp_path
    )

    assert findings(from_loki) == findings(from_files)
    (read,) = from_loki["log_reads"]
    assert read["truncated"] is None and read["events"] > 1000 and read["api_calls"] == len(server.queries) > 8
