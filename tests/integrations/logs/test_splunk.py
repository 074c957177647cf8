"""The `splunk` log kind through splunk-sdk against a Splunk stand-in: the streamed export, login, busy searches, deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from standin_splunk import SplunkEvent, SplunkStandin
from store_kit import engine_read, stored

from contracts import END, SECRET_DIR, START, WINDOW, Broken, LogRecord, LogStoreContract, MakeLogSource, Options
from integrations.logs import splunk
from integrations.logs.splunk import SplunkLogSource, SplunkOptions

SEARCH = "index=main sourcetype=checkout:json"


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> SplunkStandin:
    standin = SplunkStandin()
    monkeypatch.setenv("SPLUNK_TOKEN", standin.token)
    monkeypatch.setenv("SPLUNK_USER", standin.username)
    monkeypatch.setenv("SPLUNK_PASSWORD", standin.password)
    return standin


@pytest.fixture
def standin(credentials: SplunkStandin) -> Iterator[SplunkStandin]:
    credentials.start()
    yield credentials
    credentials.stop()


def _options(standin: SplunkStandin, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": standin.port, "scheme": "http", "search": SEARCH, **extra}


def _source(standin: SplunkStandin, **extra: Any) -> SplunkLogSource:
    return SplunkLogSource(SplunkOptions.model_validate(_options(standin, **extra)))


def _events(count: int, *, every: timedelta = timedelta(seconds=1)) -> list[SplunkEvent]:
    return [
        SplunkEvent(START + every * i, f'{{"level": "error", "msg": "payment failed for order {i}"}}', fields={"service": "checkout"})
        for i in range(count)
    ]


class TestSplunkContract(LogStoreContract):
    kind = splunk.KIND
    stamped_on_arrival = True

    @pytest.fixture
    def make_source(self, credentials: SplunkStandin) -> Iterator[MakeLogSource]:
        servers: list[SplunkStandin] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            server = SplunkStandin(endless=endless).start()
            servers.append(server)
            server.events = [SplunkEvent(entry.at, entry.line) for entry in stored(records)]
            return _options(server)

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture
    def broken_source(self, standin: SplunkStandin, monkeypatch: pytest.MonkeyPatch) -> Broken:
        # A password pasted into the user name variable: the refusal names the user, whoever shows it redacts it.
        monkeypatch.setenv("SPLUNK_USER", SECRET_DIR)
        return Broken(_options(standin, username_env="SPLUNK_USER"), target=SECRET_DIR)


def test_the_export_streams_the_window_oldest_first_with_epoch_bounds(standin: SplunkStandin) -> None:
    standin.events = _events(2500)
    source = _source(standin)

    events = list(source.events(*WINDOW))

    assert [e.ts for e in events] == [START + timedelta(seconds=i) for i in range(2500)]
    assert events[0].level == "error" and events[0].message == "payment failed for order 0"
    assert events[0].service == "checkout" and events[0].host == "web-1"
    assert events[0].attributes["sourcetype"] == "checkout:json" and "_bkt" not in events[0].attributes
    (export,) = standin.exports
    assert export.form["search"] == f"search {SEARCH} | reverse"
    assert export.form["output_mode"] == "json"
    assert (float(export.form["earliest_time"]), float(export.form["latest_time"])) == (START.timestamp(), END.timestamp() + 0.001)
    assert export.authorization == f"Bearer {standin.token}"
    assert source.account.api_calls == 2 and source.account.events == 2500


def test_events_arrive_while_the_search_still_runs(standin: SplunkStandin) -> None:
    # Three batches' worth, the rest of the answer trickling: the first batch must not wait for the end.
    standin.events = _events(1600)
    standin.delay_s, standin.slow_after = 0.01, 1100
    began = time.monotonic()

    stream = iter(_source(standin).events(*WINDOW))
    first = next(stream)
    first_after = time.monotonic() - began
    rest = list(stream)

    assert first.message == "payment failed for order 0"
    assert len(rest) == 1599
    assert first_after < (time.monotonic() - began) - 3.0


def test_a_user_logs_in_and_the_search_runs_in_its_session(standin: SplunkStandin) -> None:
    standin.events = _events(3)

    events = list(_source(standin, username_env="SPLUNK_USER").events(*WINDOW))

    assert len(events) == 3 and standin.logins == 1
    assert standin.exports[0].authorization.startswith("Splunk ")


def test_a_busy_search_head_and_a_rate_limit_are_waited_out(standin: SplunkStandin) -> None:
    standin.events = _events(30)
    standin.busy(times=1)
    standin.rate_limit(times=1, retry_after_s=1)
    source = _source(standin)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    assert len(events) == 30
    assert time.monotonic() - began >= 1.0
    assert len(standin.exports) == 3 and source.account.truncated is None


def test_splunks_warnings_mark_the_read_partial_and_previews_are_not_counted(standin: SplunkStandin) -> None:
    standin.events = _events(3)
    standin.warnings = ["Search on most recent data has completed. Some indexes may be missing: index 'main_archive' does not exist."]
    standin.preview = True
    source = _source(standin)

    events = list(source.events(*WINDOW))

    assert [e.message for e in events] == [f"payment failed for order {i}" for i in range(3)]
    assert source.account.partial == [f"Splunk: {standin.warnings[0]}"]


def test_a_refused_token_becomes_one_degraded_entry(standin: SplunkStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLUNK_TOKEN", "expired-token")
    standin.events = _events(5)

    events, degraded, _ = engine_read(_source(standin))

    assert events == 0
    (reason,) = {d.reason for d in degraded if d.component == "logs:splunk" and "found no events" not in d.reason}
    assert "refused the credentials (401: call not properly authenticated); check SPLUNK_TOKEN" in reason
    assert "expired-token" not in reason


def test_a_search_that_does_not_parse_is_splunks_own_message(standin: SplunkStandin) -> None:
    with pytest.raises(splunk.SourceError, match=r"rejected the search \(400: Error in 'search' command: Unable to parse"):
        list(_source(standin, search='index=main "unclosed').events(*WINDOW))


def test_the_deadline_keeps_what_streamed_and_marks_the_read_truncated(standin: SplunkStandin) -> None:
    standin.events = _events(600)
    standin.delay_s, standin.slow_after = 2.0, 550
    source = _source(standin, deadline_s=2.0, timeout_s=1.0)
    began = time.monotonic()

    events = list(source.events(*WINDOW))

    assert 500 <= len(events) <= 550
    assert time.monotonic() - began < 2.0 + 2.0
    assert source.account.truncated is not None


def test_the_engine_reports_an_empty_search_with_the_search_and_the_window(standin: SplunkStandin) -> None:
    events, degraded, reads = engine_read(_source(standin, search="index=nothing"))

    assert events == 0 and reads[0]["events"] == 0
    assert any("found no events for Splunk search 'index=nothing' at http://127.0.0.1:" in d.reason for d in degraded)


def test_the_times_splunk_gives_in_a_zone_are_read_as_utc() -> None:
    record = splunk.record_of({"_raw": "x", "_time": "2026-03-10T13:00:00.250+02:00", "host": "web-2", "punct": "_"})

    assert record.ts == datetime.fromisoformat("2026-03-10T11:00:00.250+00:00")
    assert record.labels == {"hostname": "web-2"}
