"""Planted secrets read from remote log stores (a token in a Loki line, a password in a Loki label, credentials in
Elasticsearch `_source` fields) reach nothing outbound: not the report, the notifications (webhook, e-mail), the
report artifacts, the incident index, nor the worker's log lines.

A real RQ worker runs the investigation from a catalog whose logs are the Loki and
Elasticsearch stand-ins; the notify targets are a webhook receiver and a real SMTP server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from planted import AWS_KEY, BEARER, CREDENTIAL_URL, GITHUB_TOKEN, OPENAI_KEY, PASSWORD_JSON, PASSWORD_KV, SLACK_TOKEN, OneService, leaks
from standin_elasticsearch import SearchStandin
from standin_loki import LokiStandin

AT = datetime(2026, 3, 10, 13, 38, 14, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@pytest.fixture
def stores() -> Iterator[tuple[LokiStandin, SearchStandin]]:
    loki = LokiStandin()
    lines = []
    for i in range(40):
        at = AT - timedelta(minutes=6) + timedelta(seconds=5 * i)
        stamp = at.isoformat().replace("+00:00", "Z")
        if i % 2:
            secrets = f"token={SLACK_TOKEN} auth=Bearer {BEARER} dsn={CREDENTIAL_URL}"
            text = f"{stamp} ERROR [checkout.pay] charge failed: upstream said 401 {secrets}"
        else:
            text = f"{stamp} ERROR [checkout.pay] charge failed: upstream said 401 key={OPENAI_KEY} gh={GITHUB_TOKEN}"
        lines.append((_ns(at), text))
    for i in range(60):
        at = AT - timedelta(minutes=50) + timedelta(seconds=30 * i)
        lines.append((_ns(at), f"{at.isoformat().replace('+00:00', 'Z')} INFO [checkout.http] GET /cart status=200"))
    loki.push({"app": "checkout", "pod": "checkout-7f9c", "db_password": PASSWORD_KV}, sorted(lines))
    search = SearchStandin()
    search.index(
        "logs-checkout",
        [
            {
                "@timestamp": (AT - timedelta(minutes=5) + timedelta(seconds=7 * i)).isoformat(),
                "message": "payment gateway refused the charge",
                "log": {"level": "error"},
                "aws": {"access_key": AWS_KEY},
                "db_password": PASSWORD_JSON,
            }
            for i in range(30)
        ],
    )
    loki.start()
    search.start()
    yield loki, search
    loki.stop()
    search.stop()


def test_secrets_read_from_log_stores_reach_nothing_outbound(
    one_service: OneService, stores: tuple[LokiStandin, SearchStandin], capfd: pytest.CaptureFixture[str]
) -> None:
    loki, search = stores
    one_service.write(
        f"""    logs:
      - {{kind: loki, url: "{loki.url}", query: '{{app="checkout"}}'}}
      - {{kind: elasticsearch, url: "{search.url}", index: logs-checkout, query: "*"}}
"""
    )
    done = one_service.investigate("checkout 401s on /pay", AT)

    assert done.report is not None
    reads = {read["source"]: read for read in done.report["log_reads"]}
    # The secrets were really read: both stores gave their events, the error lines among them.
    assert reads["loki"]["events"] == 100 and reads["elasticsearch"]["events"] == 30
    key = next(s for s in done.report["signatures"] if "charge failed" in s["template"])
    # ... and masked where they would have shown: the sample keeps the line, not the secret.
    assert "token=" in key["sample"] or "key=" in key["sample"]

    found = one_service.outbound_leaks(done, capfd.readouterr().err)
    assert len(one_service.receiver.received) == 1 and len(one_service.inbox.messages) == 1
    assert found == [], found
    # A label the store attached (Loki's db_password) is as secret as a line.
    assert not leaks(json.dumps([read for read in done.report["log_reads"]]))
