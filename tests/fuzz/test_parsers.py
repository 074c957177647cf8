"""No input crashes the parsers that read what outsiders send us: the slash-command grammar, PagerDuty posts
in Slack, and log lines. Each either parses or says why not; none raises.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alerts.registry import PARSERS, recognise
from bot.command_investigate import CommandError, InvestigateRequest, parse_investigate
from bot.pagerduty_post import PagerDutyPost, parse_pagerduty_message
from core.catalog import Catalog, load_catalog
from integrations.logs.parsing import parse_stream

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
NOW = datetime(2026, 3, 10, 13, 38, tzinfo=UTC)

words = st.one_of(
    st.sampled_from(
        [
            "checkout",
            "Checkout-API",
            "--since",
            "--at",
            "--since=2h",
            "--at=13:38",
            "--",
            "—since",
            "help",
            "-h",
            "2h",
            "30m",
            "1d",
            "0s",
            "99999999d",
            "13:38",
            "25:61",
            "2026-03-10T13:38:14Z",
            "yesterday",
            "--nope",
        ]
    ),
    st.text(min_size=1, max_size=30),
)
command_text = st.one_of(st.text(max_size=300), st.lists(words, max_size=12).map(" ".join))


def catalog(tmp: Path) -> Catalog:
    path = tmp / "services.yaml"
    path.write_text("services:\n  checkout:\n    aliases: [Checkout-API]\n  payments: {}\n", encoding="utf-8")
    return load_catalog(path)


def test_slash_command_grammar_never_crashes_and_always_answers(tmp_path: Path) -> None:
    known = catalog(tmp_path)

    @FUZZ
    @given(text=command_text)
    def check(text: str) -> None:
        result = parse_investigate(text, known, now=NOW)
        if isinstance(result, CommandError):
            assert result.text.strip()
        else:
            assert isinstance(result, InvestigateRequest) and result.service in ("checkout", "payments")
            assert result.since_s is None or result.since_s > 0

    check()


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=80))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
incident_text = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda n, status, svc: f":red_circle: *{status}* <https://acme.pagerduty.com/incidents/Q{n}|[#{n}] {svc} is down>",
        st.integers(0, 10**6),
        st.sampled_from(["Triggered", "Acknowledged", "Resolved", "Reopened", "??"]),
        st.text(max_size=30),
    ),
)
mrkdwn = st.fixed_dictionaries({"type": st.just("mrkdwn"), "text": incident_text})
block = st.fixed_dictionaries(
    {"type": st.sampled_from(["section", "context", "rich_text", "header", "junk"])},
    optional={"text": st.one_of(json_value, mrkdwn), "fields": st.lists(mrkdwn, max_size=4), "elements": json_value},
)
attachment = st.fixed_dictionaries(
    {}, optional={"fallback": incident_text, "text": incident_text, "blocks": st.lists(block, max_size=4), "title": json_value}
)
message = st.fixed_dictionaries(
    {},
    optional={
        "text": incident_text,
        "bot_id": st.sampled_from(["B0PAGERDTY", "", "B1"]),
        "app_id": st.sampled_from(["A1FKYAUUX", "A0"]),
        "ts": st.text(max_size=20),
        "thread_ts": st.text(max_size=20),
        "subtype": st.text(max_size=20),
        "blocks": st.one_of(json_value, st.lists(block, max_size=5)),
        "attachments": st.one_of(json_value, st.lists(attachment, max_size=3)),
    },
)


@FUZZ
@given(payload=message)
def test_pagerduty_post_parser_never_crashes(payload: dict[str, Any]) -> None:
    recognise(payload, pagerduty_ids=[])  # type: ignore[arg-type]
    parsed = parse_pagerduty_message(payload)  # type: ignore[arg-type]
    assert parsed is None or (isinstance(parsed, PagerDutyPost) and parsed.incident_id)


log_line = st.one_of(
    st.text(max_size=400),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.dictionaries(
        st.sampled_from(["ts", "time", "@timestamp", "level", "msg", "message", "error", "stack", "exc_info", "status", "x"]),
        json_value,
        max_size=6,
    ).map(lambda d: __import__("json").dumps(d, default=str)),
    st.builds(
        lambda ts, lvl, rest: f"{ts} {lvl} {rest}",
        st.sampled_from(
            ["2026-03-10T13:38:14Z", "2026-03-10 13:38:14,123", "1741614000", "[10/Mar/2026:13:38:14 +0000]", "99999-99-99T99:99:99"]
        ),
        st.sampled_from(["ERROR", "info", "WARN", "CRITICAL", "7"]),
        st.text(max_size=100),
    ),
    st.builds(
        lambda n: "Traceback (most recent call last):\n" + '  File "x.py", line 1, in f\n' * n + "ValueError: boom", st.integers(0, 50)
    ),
    st.lists(st.tuples(st.text(alphabet='abc_=" ', max_size=10), st.text(max_size=20)), max_size=8).map(
        lambda kv: " ".join(f"{k}={v}" for k, v in kv)
    ),
)


@FUZZ
@given(lines=st.lists(log_line, max_size=30))
def test_log_parser_never_crashes_and_keeps_every_event_well_formed(lines: list[str]) -> None:
    physical = [piece + "\n" for line in lines for piece in line.split("\n")]
    for event in parse_stream(iter(physical), "fuzz.log"):
        assert isinstance(event.message, str) and isinstance(event.raw, str)
        assert event.ts is None or event.ts.tzinfo is not None


@FUZZ
@given(payload=message)
def test_every_alert_post_parser_reads_any_payload_without_crashing(payload: dict[str, Any]) -> None:
    for parser in PARSERS:
        parser.looks_like(payload)  # type: ignore[arg-type]
        parsed = parser.parse(payload)  # type: ignore[arg-type]
        assert parsed is None or (parsed.tool == parser.tool and parsed.alert_id)
