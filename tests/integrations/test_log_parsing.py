"""`parse_stream` on every log format the responder meets, and on input meant to break it."""

from __future__ import annotations

import json
import pickle
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.logs.base import LEVELS, Frame, LogEvent
from integrations.logs.files import open_lines
from integrations.logs.parsing import (
    FORMATS,
    MAX_FOLDED_LINES,
    MAX_FRAMES,
    MAX_MESSAGE,
    MAX_RAW,
    formats,
    json_lines,
    normalize_level,
    parse_stream,
    read_fields,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
LEADING_TIME = re.compile(r"^\[?\d{4}[-/]\d\d[-/]\d\d")


def parse(name: str) -> list[LogEvent]:
    return list(parse_stream(open_lines(FIXTURES / name), name))


def one(line: str) -> LogEvent:
    events = list(parse_stream([line], "test"))
    assert len(events) == 1, events
    return events[0]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ---------------------------------------------------------------- text formats with stack traces


def test_python_traceback_folds_into_the_error_line_with_frames_and_the_last_exception() -> None:
    events = parse("python-logging.log")

    assert [e.level for e in events] == ["info", "warning", "error", "info"]
    failed = events[2]
    assert failed.ts == at(2025, 3, 14, 9, 41, 5, 880000)
    assert failed.attributes["logger"] == "billing.tasks"
    # A chained traceback ("During handling of the above exception") is one event; the last exception wins.
    assert failed.exception == "billing.render.errors.RenderError: no template for inv_Q7c1"
    assert failed.message == "failed to render invoice inv_Q7c1 for customer cus_19aa: " + failed.exception
    assert Frame("/srv/billing/app/tasks/invoices.py", "render_and_send", 54) in failed.frames
    assert failed.frames[0] == Frame("/srv/billing/app/render/pdf.py", "render_invoice", 88)
    assert "KeyError: 'template_name'" in failed.raw
    assert failed.raw.count("\n") == 13


@pytest.mark.parametrize(
    ("line", "level", "message", "fields"),
    [
        (
            "2025-06-30 17:22:56,096 ERROR [inventory.sync] stock feed rejected",
            "error",
            "stock feed rejected",
            {"logger": "inventory.sync"},
        ),
        (
            "2025-06-30 17:22:56,096 - inventory.sync - WARNING - stock feed slow",
            "warning",
            "stock feed slow",
            {"logger": "inventory.sync"},
        ),
        (
            "2025-06-30 17:22:56,096 [ERROR] inventory.sync: stock feed rejected",
            "error",
            "stock feed rejected",
            {"logger": "inventory.sync"},
        ),
        (
            "2025-06-30T17:22:56.096Z ERROR 1 --- [nio-8080-exec-3] c.i.inventory.web.StockController   : lookup failed",
            "error",
            "lookup failed",
            {"thread": "nio-8080-exec-3", "logger": "c.i.inventory.web.StockController"},
        ),
        (
            "2025-06-30T17:22:56.096Z ERROR 1 --- [inventory] [nio-8080-exec-3] c.i.StockController : lookup failed",
            "error",
            "lookup failed",
            {"app": "inventory", "thread": "nio-8080-exec-3", "logger": "c.i.StockController"},
        ),
        (
            "2025-06-30 17:22:56.096 [main] INFO  com.initech.Boot - started in 4.1s",
            "info",
            "started in 4.1s",
            {"thread": "main", "logger": "com.initech.Boot"},
        ),
        ("[2025-06-30 17:22:56 +0000] [7] [CRITICAL] WORKER TIMEOUT (pid:12)", "critical", "WORKER TIMEOUT (pid:12)", {"pid": "7"}),
        (
            '2025-06-30T17:22:56.096Z\tERROR\tstock/feed.go:31\tfeed rejected\t{"error": "bad sku"}',
            "error",
            "feed rejected: bad sku",
            {"caller": "stock/feed.go:31", "error": "bad sku"},
        ),
    ],
)
def test_logging_line_variants_give_level_attributes_and_a_bare_message(
    line: str, level: str, message: str, fields: dict[str, str]
) -> None:
    event = one(line)

    assert event.ts == at(2025, 6, 30, 17, 22, 56, 96000 if "56 " not in line else 0)
    assert (event.level, event.message) == (level, message)
    assert fields.items() <= event.attributes.items()


def test_spring_stack_trace_folds_with_package_paths_and_the_root_cause() -> None:
    events = parse("spring-boot.log")

    assert [e.level for e in events] == ["info", "error", "warning"]
    failed = events[1]
    assert failed.attributes == {"thread": "http-nio-8080-exec-9", "logger": "com.initech.ledger.web.GlobalExceptionHandler"}
    assert failed.exception is not None
    assert failed.exception.startswith("org.springframework.dao.DataIntegrityViolationException: could not execute")
    assert failed.exception.endswith(
        'Caused by: org.postgresql.util.PSQLException: ERROR: duplicate key value violates unique constraint "transfers_idempotency_key"'
    )
    assert failed.message.startswith("unhandled exception on POST /api/v1/transfers: org.springframework.dao")
    assert (
        Frame("com/initech/ledger/service/TransferService.java", "com.initech.ledger.service.TransferService.create", 118) in failed.frames
    )
    assert Frame("java/lang/Thread.java", "java.lang.Thread.run", 1583) in failed.frames
    assert failed.frames[-1].file == "com/initech/ledger/repository/TransferRepository.java"
    # Generated proxies name no file a repository could hold.
    assert not any("<generated>" in f.file for f in failed.frames)
    assert "\t... 31 more" in failed.raw


def test_celery_traceback_folds_per_pod_even_when_another_pods_lines_interleave() -> None:
    events = parse("celery-pods.log")

    assert len(events) == 5
    failed = next(e for e in events if e.level == "error")
    assert failed.attributes == {"process": "ForkPoolWorker-3", "pod": "mailer-6b9f7c7d9-2xkqp", "container": "worker"}
    assert failed.exception == "smtplib.SMTPServerDisconnected: Connection unexpectedly closed"
    assert [f.function for f in failed.frames] == ["trace_task", "send_digest", "getreply"]
    assert "mailer-6b9f7c7d9-r8lzw" not in failed.raw
    assert all("[pod/" not in e.raw and "[pod/" not in e.message for e in events)
    assert {e.attributes["pod"] for e in events} == {"mailer-6b9f7c7d9-2xkqp", "mailer-6b9f7c7d9-r8lzw"}


def test_go_panic_after_json_lines_is_its_own_critical_event_with_frames() -> None:
    events = parse("go-panic.log")

    assert [e.level for e in events] == ["info", "error", "critical"]
    panic = events[2]
    assert panic.exception == "panic: runtime error: invalid memory address or nil pointer dereference"
    # Go prints a panic after the last log line, without a time of its own.
    assert panic.ts == events[1].ts
    assert panic.attributes["ts_inferred"] is True
    assert panic.frames == [
        Frame("/app/internal/rule/evaluator.go", "github.com/umbrella/rules/internal/rule.(*Evaluator).Match", 42),
        Frame("/app/internal/rule/service.go", "github.com/umbrella/rules/internal/rule.(*Service).Evaluate", 151),
        Frame("/usr/local/go/src/net/http/server.go", "net/http.(*Server).Serve", 3285),
    ]
    assert panic.raw.endswith("exit status 2")


# ---------------------------------------------------------------- JSON lines


def test_zap_json_carries_error_text_and_a_go_stack_inside_a_field() -> None:
    events = parse("zap.jsonl")

    assert [e.level for e in events] == ["info", "error", "warning", "critical"]
    assert events[0].ts == datetime.fromtimestamp(1722951601.25, UTC)
    assert events[0].attributes["status"] == 200
    failed = events[1]
    assert failed.message == "request failed: load cart 88124: context deadline exceeded"
    assert failed.exception == "load cart 88124: context deadline exceeded"
    assert failed.frames[0] == Frame("/src/internal/carts/handler.go", "github.com/umbrella/carts/internal/carts.(*Handler).fail", 77)
    assert len(failed.frames) == 3
    assert "stacktrace" not in failed.attributes
    assert failed.attributes["pod"] == "carts-5d8f9b7c4-kq2xv"


def test_pino_numeric_levels_epoch_milliseconds_and_err_stack() -> None:
    events = parse("pino.jsonl")

    assert [e.level for e in events] == ["info", "error", "warning", "critical"]
    assert events[0].ts == at(2024, 10, 28, 10, 40, 1, 123000)
    assert {k: events[0].attributes[k] for k in ("method", "path", "status", "duration_ms")} == {
        "method": "GET", "path": "/v1/orders/ord_55", "status": 200, "duration_ms": 23,
    }  # fmt: skip
    failed = events[1]
    assert failed.exception == "TypeError: Cannot read properties of undefined (reading 'currency')"
    assert failed.message == "unhandled error while processing request: " + failed.exception
    assert failed.frames == [
        Frame("/app/src/services/pricing.js", "priceOrder", 42),
        Frame("/app/src/routes/orders.js", "createOrder", 17),
        Frame("/app/node_modules/express/lib/router/index.js", "", 284),
    ]
    # bunyan writes the same levels with an ISO time.
    assert events[3].ts == at(2024, 10, 28, 10, 40, 9, 512000)


def test_structlog_event_with_a_formatted_traceback_field() -> None:
    events = parse("structlog.jsonl")

    assert events[0].message == "charge created"
    failed = events[1]
    assert failed.exception == "payments.clients.gateway.GatewayTimeout: authorize timed out after 5.0s"
    assert failed.frames[-1] == Frame("/srv/payments/app/clients/gateway.py", "authorize", 33)
    assert "exception" not in failed.attributes
    assert events[2].ts == at(2025, 2, 11, 8, 15, 31, 500000)


def test_logstash_message_and_java_stack_trace_field() -> None:
    events = parse("logstash.jsonl")

    assert events[0].ts == at(2025, 7, 1, 12, 0, 1, 204000)
    assert events[0].message.startswith("Started ShippingApplication")
    failed = events[1]
    assert failed.level == "error"
    assert (
        failed.exception
        == "java.lang.IllegalStateException: carrier quote expired | Caused by: java.net.SocketTimeoutException: Read timed out"
    )
    assert [f.file for f in failed.frames] == [
        "com/initech/shipping/labels/LabelService.java",
        "com/initech/shipping/web/LabelController.java",
        "com/initech/shipping/carrier/CarrierClient.java",
    ]


def test_broken_json_line_still_gives_its_time_level_and_message() -> None:
    event = one('{"level":"error","ts":1722951605.9,"msg":"request failed","error":"boo')

    assert (event.level, event.message, event.ts) == ("error", "request failed", datetime.fromtimestamp(1722951605.9, UTC))


# ---------------------------------------------------------------- logfmt


def test_logfmt_with_ts_or_time_keys_quoted_values_and_a_following_traceback() -> None:
    events = parse("logfmt.log")

    assert [e.level for e in events] == ["info", "warning", "error", "error"]
    assert events[0].attributes == {"logger": "app.db", "pod": "quotes-6f7d9c-abcde", "pool": "db", "active": "3", "idle": "17"}
    assert events[1].attributes["path"] == "/v1/quotes?limit=20"
    assert (events[1].attributes["status"], events[1].attributes["duration_ms"]) == (429, 3.1)
    assert events[2].exception == "httpx.ReadTimeout: timed out"
    assert [f.function for f in events[2].frames] == ["get_quote", "convert"]
    assert events[3].ts == at(2025, 9, 2, 5, 30, 3)
    assert events[3].message == "fx refresh failed: dial tcp 10.0.4.7:443: i/o timeout"


def test_logfmt_values_with_escaped_quotes_and_empty_values() -> None:
    event = one('time=2025-09-02T07:30:00Z level=WARN msg="client said \\"stop\\"" reason= path="/a b"')

    assert (event.level, event.message) == ("warning", 'client said "stop"')
    assert event.attributes == {"reason": "", "path": "/a b"}


# ---------------------------------------------------------------- access, proxy and server logs


def test_nginx_access_level_comes_from_status_and_attributes_keep_the_request() -> None:
    events = parse("nginx-access.log")

    assert [e.level for e in events] == ["info", "warning", "error", "warning", "info"]
    assert [e.message for e in events[:3]] == [
        "GET /v2/invoices/inv_8Jd2 200",
        "GET /wp-login.php 404",
        "POST /v2/invoices/inv_Q7c1/send 502",
    ]
    bad_gateway = events[2].attributes
    assert {k: bad_gateway[k] for k in ("status", "method", "path", "duration_ms", "upstream_status")} == {
        "status": 502, "method": "POST", "path": "/v2/invoices/inv_Q7c1/send", "duration_ms": 5003, "upstream_status": "502",
    }  # fmt: skip
    assert events[3].ts == at(2025, 3, 14, 9, 41, 6)  # written as 11:41:06 +0200
    assert events[3].attributes["status"] == 400 and "method" not in events[3].attributes
    assert events[4].attributes["path"] == "/health"


def test_envoy_access_flags_status_zero_and_duration() -> None:
    events = parse("envoy-access.log")

    assert [e.level for e in events] == ["info", "error", "warning", "warning"]
    assert events[1].message == "POST /v1/convert 503 UF"
    assert events[1].attributes["duration_ms"] == 1002
    assert events[1].attributes["upstream_host"] == "10.33.7.13:8080"
    assert events[0].ts == at(2025, 6, 11, 21, 4, 55, 318000)


def test_nginx_error_lines_keep_the_message_and_move_the_request_context_to_attributes() -> None:
    events = parse("nginx-error.log")

    assert [e.level for e in events] == ["error", "warning", "critical"]
    assert events[0].message == "upstream prematurely closed connection while reading response header from upstream"
    assert events[0].attributes["upstream"] == "http://10.61.3.9:8080/v2/invoices/inv_Q7c1/send"
    assert events[0].ts == at(2025, 3, 14, 9, 41, 5)


def test_kubernetes_events_warning_type_is_a_warning_and_the_message_names_the_reason() -> None:
    events = parse("kube-events.log")

    assert [e.level for e in events] == ["info", "info", "warning", "warning", "info"]
    assert events[2].message == "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
    assert events[2].attributes["pod"] == "fx-84d6c9b7f5-9xk2p"
    assert events[4].attributes == {"reason": "ScalingReplicaSet", "object": "deployment/fx", "deployment": "fx"}
    assert events[0].ts == at(2025, 6, 11, 21, 1, 10)


def test_postgres_severities_and_detail_lines_fold_into_their_error() -> None:
    events = parse("postgres.log")

    assert [e.level for e in events] == ["info", "info", "error", "info", "critical", "critical", "warning"]
    duplicate = events[2]
    assert duplicate.message == 'duplicate key value violates unique constraint "transfers_idempotency_key"'
    assert "DETAIL:  Key (idempotency_key)=(c0ffee-42) already exists." in duplicate.raw
    assert "STATEMENT:  INSERT INTO transfers" in duplicate.raw
    assert duplicate.attributes == {"pid": 41822, "user": "ledger", "database": "ledger"}
    assert events[3].raw.count("\n") == 2
    assert events[0].ts == at(2025, 8, 19, 3, 12, 44, 501000)
    assert events[6].ts == at(2025, 8, 19, 3, 14, 6, 120000)  # written as 05:14:06 +02


def test_redis_role_and_level_marks() -> None:
    events = parse("redis.log")

    assert [e.level for e in events] == ["notice", "notice", "warning", "warning", "info"]
    assert events[3].message == "Can't save in background: fork: Cannot allocate memory"
    assert events[0].ts == at(2025, 8, 19, 3, 10, 0, 12000)


# ---------------------------------------------------------------- typed fields


def test_json_keys_fill_the_typed_fields() -> None:
    event = one(
        '{"ts": 1751304176, "level": "error", "msg": "charge failed", "method": "POST", "status": 503, "duration_ms": 12.5,'
        ' "pod": "payments-7d9f8b6c5-x2k4q", "host": "api.stripe.com", "service": "payments", "trace_id": "4bf92f3577b34da6",'
        ' "error": {"type": "GatewayTimeout", "message": "authorize timed out"}, "dependency": "stripe", "version": "2.4.1"}'
    )

    assert (event.status, event.duration_ms, event.method) == (503, 12.5, "POST")
    assert (event.pod, event.service, event.trace_id, event.version) == (
        "payments-7d9f8b6c5-x2k4q",
        "payments",
        "4bf92f3577b34da6",
        "2.4.1",
    )
    assert (event.error_type, event.error_text) == ("GatewayTimeout", "authorize timed out")
    # A string `host` names the host a request went to: a peer, not the machine that wrote the line.
    assert event.host is None
    assert event.peers == ("stripe", "api.stripe.com")
    # The typed fields read the attributes; they do not take them away.
    assert event.attributes["status"] == 503 and event.attributes["pod"] == "payments-7d9f8b6c5-x2k4q"


def test_pino_nested_response_hostname_and_error_object() -> None:
    events = parse("pino.jsonl")

    assert (events[0].status, events[0].duration_ms, events[0].method) == (200, 23.0, "GET")
    failed = events[1]
    assert failed.error_type == "TypeError"
    assert failed.error_text == "Cannot read properties of undefined (reading 'currency')"


@pytest.mark.parametrize(
    ("attributes", "typed"),
    [
        ({"statusCode": "502", "latency_ms": "7"}, {"status": 502, "duration_ms": 7.0}),
        ({"res": {"statusCode": 201}, "responseTime": 30}, {"status": 201, "duration_ms": 30.0}),
        ({"status": 200, "request_time": "0.25"}, {"status": 200, "duration_ms": 250.0}),
        ({"code": 111, "latency": "1m2.5s"}, {"status": 111, "duration_ms": 62500.0}),
        ({"code": 7, "elapsed": "1500µs", "duration": 12}, {"status": None, "duration_ms": 1.5}),
        ({"status": "ok", "duration_ms": "nan", "latency": "fast"}, {"status": None, "duration_ms": None}),
        ({"kubernetes": {"pod_name": "web-5d8f9b7c4-kq2xv", "host": "node-3"}}, {"pod": "web-5d8f9b7c4-kq2xv", "host": None}),
        ({"hostname": "web-5d8f9b7c4-kq2xv", "service.name": "web"}, {"pod": None, "host": "web-5d8f9b7c4-kq2xv", "service": "web"}),
        ({"host": {"name": "ip-10-0-0-7"}, "service": {"name": "web"}}, {"host": "ip-10-0-0-7", "service": "web", "peers": ()}),
        ({"error.type": "KeyError", "error": "missing key"}, {"error_type": "KeyError", "error_text": "missing key"}),
        ({"error": "refused", "reason": "BackOff", "err": "refused"}, {"error_text": "refused | BackOff"}),
        ({"traceId": "abc", "dd.trace_id": 1}, {"trace_id": "abc"}),
        ({"trace.id": 12345678901234567890}, {"trace_id": "12345678901234567890"}),
        ({"upstream": "x" * 200, "db": "orders", "server": ""}, {"peers": ("orders",)}),
    ],
)
def test_read_fields_normalises_every_spelling(attributes: dict[str, object], typed: dict[str, object]) -> None:
    event = LogEvent(None, "info", "", "", "remote")

    read_fields(event, attributes)

    assert {name: getattr(event, name) for name in typed} == typed


def test_logfmt_keys_fill_the_typed_fields() -> None:
    event = one(
        'ts=2025-09-02T05:30:03Z level=error msg="quote failed" method=GET status=503 duration_ms=31.5'
        ' pod=quotes-6f7d9c-abcde trace_id=4bf92f35 error="dial tcp: i/o timeout" dependency=fx-api'
    )

    assert (event.status, event.duration_ms, event.method, event.pod, event.trace_id) == (
        503,
        31.5,
        "GET",
        "quotes-6f7d9c-abcde",
        "4bf92f35",
    )
    assert event.error_text == "dial tcp: i/o timeout" and event.peers == ("fx-api",)


def test_access_lines_give_status_duration_method_and_upstream() -> None:
    nginx = parse("nginx-access.log")
    envoy = parse("envoy-access.log")

    assert [(e.status, e.method) for e in nginx[:3]] == [(200, "GET"), (404, "GET"), (502, "POST")]
    assert nginx[2].duration_ms == 5003.0
    assert nginx[2].peers == (nginx[2].attributes["upstream"],)
    # A junk request line has a status but no method.
    assert (nginx[3].status, nginx[3].method) == (400, None)
    assert (envoy[1].status, envoy[1].duration_ms) == (503, 1002.0)
    # Envoy writes 0 when no response was sent: the status as the line states it.
    assert any(e.status == 0 for e in envoy)


def test_pods_come_from_kubernetes_events_and_pod_prefixes() -> None:
    assert parse("kube-events.log")[2].pod == "fx-84d6c9b7f5-9xk2p"
    assert one('[pod/quotes-6f7d9c-abcde/app] {"level":"error","pod":"other","msg":"boom"}').pod == "quotes-6f7d9c-abcde"
    assert parse("celery-pods.log")[0].pod is not None


def test_plain_text_states_no_typed_fields() -> None:
    event = one("2025-06-30 17:22:56,096 ERROR [inventory.sync] stock feed rejected status=503")

    assert (event.status, event.duration_ms, event.pod, event.error_text, event.peers) == (None, None, None, None, ())


def test_events_survive_pickling_with_their_typed_fields() -> None:
    events = parse("pino.jsonl") + parse("spring-boot.log")

    assert pickle.loads(pickle.dumps(events)) == events


def test_every_format_reads_its_own_lines_first() -> None:
    lines = {
        "json": '{"level":"info","msg":"x"}',
        "celery": "[2025-05-29 18:57:32,629: INFO/MainProcess] Task received",
        "envoy": '[2025-06-11T21:04:55.318Z] "GET /v1/quotes HTTP/1.1" 200 - 0 359 7 7 "10.0.0.1" "curl" "id" "host" "10.0.0.2:8080"',
        "kubernetes-event": "2025-06-11T21:01:10Z  Normal   Pulled   pod/fx-84d6c9b7f5-9xk2p   Container image pulled",
        "postgres": "2025-08-19 03:12:44.501 UTC [41822] LOG:  checkpoint starting: time",
        "iso-text": "2025-06-30 17:22:56,096 ERROR [inventory.sync] stock feed rejected",
        "nginx-error": "2025/03/14 09:41:05 [error] 31#31: *9 upstream timed out, client: 10.0.0.1, server: _",
        "redis": "1:M 19 Aug 2025 03:10:00.012 * Ready to accept connections",
        "logfmt": "ts=2025-09-02T05:30:03Z level=info msg=ready",
        "level-prefix": "ERROR:root:cannot bind",
        "nginx-access": '10.0.0.1 - - [14/Mar/2025:09:41:05 +0000] "GET / HTTP/1.1" 200 12 "-" "curl"',
        "bracket-iso-text": "[2025-06-30 17:22:56] something happened",
        "timestamped-text": "2025-06-30 17:22:56 something happened",
    }

    assert sorted(lines) == sorted(f.name for f in FORMATS)
    for name, line in lines.items():
        first = line[0] if line[0] in formats.SPECIFIC else None
        specific = formats.SPECIFIC[first] if first else formats.SPECIFIC_OTHER
        fallbacks = formats.FALLBACKS[first] if first else formats.FALLBACKS_OTHER
        reader = next(f for f in (*specific, *fallbacks) if f.parse(line, "x") is not None)
        assert reader.name == name, line


# ---------------------------------------------------------------- across formats


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_every_fixture_event_is_timed_utc_with_a_known_level_and_a_clean_message(name: str) -> None:
    events = parse(name)

    assert events
    for event in events:
        assert event.ts is not None and event.ts.utcoffset() is not None and event.ts.utcoffset().total_seconds() == 0
        assert event.level in LEVELS
        assert event.source == name
        assert not LEADING_TIME.match(event.message), event.message
        pod = event.attributes.get("pod")
        if isinstance(pod, str) and name == "celery-pods.log":
            assert pod not in event.message


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("WARN", "warning"), ("warning", "warning"), ("err", "error"), ("SEVERE", "error"), ("fatal", "critical"),
        ("panic", "critical"), ("crit", "critical"), ("DPANIC", "critical"), ("notice", "notice"), ("trace", "trace"),
        (10, "trace"), (20, "debug"), (30, "info"), (40, "warning"), (50, "error"), (60, "critical"), ("50", "error"),
        (3, "error"), ("verbose", "debug"), ("shouting", "info"), (None, "info"), (True, "info"), ("²", "info"),
    ],
)  # fmt: skip
def test_levels_are_normalised(value: object, level: str) -> None:
    assert normalize_level(value) == level


@pytest.mark.parametrize(
    ("line", "ts"),
    [
        ('{"ts": 1751304176.096, "msg": "x"}', at(2025, 6, 30, 17, 22, 56, 96000)),
        ('{"time": 1751304176096, "msg": "x"}', at(2025, 6, 30, 17, 22, 56, 96000)),
        ('{"time": "1751304176", "msg": "x"}', at(2025, 6, 30, 17, 22, 56)),
        ('{"timestamp": "2025-06-30T19:22:56.096+02:00", "msg": "x"}', at(2025, 6, 30, 17, 22, 56, 96000)),
        ('{"@timestamp": "2025-06-30T17:22:56.096123456Z", "message": "x"}', at(2025, 6, 30, 17, 22, 56, 96123)),
        ("ts=2025-06-30T17:22:56Z level=info msg=x", at(2025, 6, 30, 17, 22, 56)),
        ("2025-06-30 17:22:56,096 INFO x", at(2025, 6, 30, 17, 22, 56, 96000)),
        ('{"ts": 12.5, "msg": "seconds since start"}', None),
        ('{"ts": "yesterday", "msg": "x"}', None),
        ('{"time": 1e400, "msg": "x"}', None),
    ],
)
def test_timestamps_become_aware_utc_or_none(line: str, ts: datetime | None) -> None:
    assert one(line).ts == ts


def test_lines_without_a_time_that_continue_nothing_are_events_without_ts() -> None:
    events = list(parse_stream(["Starting server on :8080", "ERROR:root:cannot bind", "INFO:     Uvicorn running"], "x"))

    assert [(e.ts, e.level, e.message) for e in events] == [
        (None, "info", "Starting server on :8080"),
        (None, "error", "cannot bind"),
        (None, "info", "Uvicorn running"),
    ]
    assert events[1].attributes == {"logger": "root"}


def test_a_traceback_after_an_info_line_is_its_own_error_event() -> None:
    lines = ["2025-06-30 17:22:56,096 INFO [app] worker started", "Traceback (most recent call last):",
             '  File "/app/run.py", line 3, in <module>', "    main()", "ValueError: bad config"]  # fmt: skip

    started, crash = parse_stream(lines, "x")

    assert started.message == "worker started" and started.exception is None
    assert (crash.level, crash.message, crash.exception) == ("error", "ValueError: bad config", "ValueError: bad config")
    assert crash.ts == started.ts
    assert crash.frames == [Frame("/app/run.py", "<module>", 3)]


def test_a_pods_crash_printed_without_a_log_line_keeps_the_pod() -> None:
    lines = [
        "[pod/quotes-6f7d9c-abcde/app] Traceback (most recent call last):",
        '[pod/quotes-6f7d9c-abcde/app]   File "/app/main.py", line 9, in <module>',
        "[pod/quotes-6f7d9c-abcde/app] RuntimeError: no config",
    ]

    (event,) = parse_stream(lines, "test")

    assert (event.level, event.message, event.ts) == ("error", "RuntimeError: no config", None)
    assert event.attributes == {"pod": "quotes-6f7d9c-abcde", "container": "app", "ts_inferred": True}


def test_pod_prefix_is_stripped_into_attributes_for_any_format() -> None:
    event = one('[pod/quotes-6f7d9c-abcde/app] {"level":"error","ts":1751304176,"msg":"boom"}')

    assert (event.level, event.message, event.raw) == ("error", "boom", '{"level":"error","ts":1751304176,"msg":"boom"}')
    assert (event.attributes["pod"], event.attributes["container"]) == ("quotes-6f7d9c-abcde", "app")


# ---------------------------------------------------------------- robustness


def test_a_ten_megabyte_line_is_capped_and_parsing_goes_on() -> None:
    huge = "2025-06-30 17:22:56,096 ERROR [app] " + "x" * 10_000_000

    events = list(parse_stream([huge, "2025-06-30 17:22:57,000 INFO [app] after"], "x"))

    assert len(events) == 2
    assert len(events[0].raw) == MAX_RAW and len(events[0].message) == MAX_MESSAGE
    assert events[1].message == "after"


def test_binary_junk_nul_bytes_and_replacement_characters_never_raise() -> None:
    junk = bytes(range(256)).decode("latin-1")
    lines = [junk, "\x00\x00{\x00}", "\ufffd\ufffd ERROR \ufffd", "2025-06-30 17:22:56,096 INFO [a\x00pp] ok\x00", "", "   ", "\ufeff"]

    events = list(parse_stream(lines, "x"))

    assert all("\x00" not in e.raw and e.level in LEVELS for e in events)
    assert events[-1].message == "ok" and events[-1].attributes == {"logger": "app"}


def test_folding_keeps_memory_bounded() -> None:
    frames = [f"\tat com.initech.Deep.call{i}(Deep.java:{i + 1})" for i in range(5000)]

    (event,) = parse_stream(
        ["2025-06-30 17:22:56,096 ERROR [main] com.initech.Deep - overflow", "java.lang.StackOverflowError", *frames], "x"
    )

    assert event.raw.count("\n") + 1 == MAX_FOLDED_LINES
    assert len(event.raw) <= MAX_RAW
    assert len(event.frames) == MAX_FRAMES
    assert event.attributes["folded_lines_dropped"] == 5002 - MAX_FOLDED_LINES
    assert event.exception == "java.lang.StackOverflowError"


def test_many_interleaved_pods_do_not_hold_unbounded_open_events() -> None:
    lines = [f"[pod/app-{i}/c] 2025-06-30 17:22:56,096 INFO [a] hello {i}" for i in range(1000)]

    events = list(parse_stream(lines, "x"))

    assert len(events) == 1000
    assert {e.message for e in events} == {f"hello {i}" for i in range(1000)}


@pytest.mark.parametrize("prefix", ["", "\t", "\tat ", "2025-06-30 17:22:56,096 ERROR ", "{", "ts=1 msg=", "1.2.3.4 - - [", "[pod/a/b] "])
@pytest.mark.parametrize("unit", ["(", "a.", "1:", '"', "\\", "\t/", " (", "=", "["])
@pytest.mark.timeout(30)  # a hang guard: quadratic regex backtracking would never finish; speed is for `make bench`
def test_hostile_long_lines_do_not_hang_the_parser(prefix: str, unit: str) -> None:
    body = unit * (200_000 // len(unit))

    events = list(parse_stream(["2025-06-30 17:22:56,096 ERROR head", prefix + body, "\t" + body], "x"))

    assert events and events[0].message.startswith("head")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=400), max_size=20), st.sampled_from(sorted(p.name for p in FIXTURES.iterdir())))
def test_parse_stream_never_raises_on_arbitrary_text(noise: list[str], name: str) -> None:
    real = (FIXTURES / name).read_text().splitlines()
    lines = [line for pair in zip(real, noise, strict=False) for line in pair] + noise

    for event in parse_stream(lines, "x"):
        assert event.level in LEVELS
        assert event.ts is None or event.ts.tzinfo is not None
        assert len(event.raw) <= MAX_RAW and len(event.message) <= MAX_MESSAGE


@pytest.mark.parametrize("loads", ["orjson", "json"])
def test_absurd_json_numbers_give_no_time_and_no_error(loads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if loads == "json":
        monkeypatch.setattr(json_lines, "_json_loads", json.loads)
    lines = ['{"ts": 1' + "0" * 400 + ', "level": 5' + "0" * 400 + ', "msg": "x"}', '{"ts": -1, "msg": "x"}', '{"time": 1e308, "msg": "x"}']

    events = list(parse_stream(lines, "x"))

    assert [(e.ts, e.message) for e in events] == [(None, "x")] * 3
