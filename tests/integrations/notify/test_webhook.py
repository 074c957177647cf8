"""The `webhook` notifier against a loopback receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin_receiver import Answer, Receiver

from contracts import NOTICE, SECRET_DIR, Broken, NotifierContract, build
from integrations.errors import SourceError
from integrations.notify import webhook
from integrations.notify.webhook import sign
from integrations.remote_calls import RetryableError

SIGNING = "whsec_" + base64.b64encode(b"a-webhook-secret-of-32-bytes-ok!").decode()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("IR_WEBHOOK_SECRET", SIGNING)
    server = Receiver(secret=SIGNING).start()
    yield server
    server.stop()


class TestWebhookContract(NotifierContract):
    kind = webhook.KIND

    @pytest.fixture
    def make_source(self, receiver: Receiver) -> Any:
        return lambda: {"url": f"{receiver.url}/hooks/ir", "secret_env": "IR_WEBHOOK_SECRET", "timeout_s": 3}

    @pytest.fixture
    def delivered(self, receiver: Receiver) -> Any:
        return lambda: [got.body.decode() for got in receiver.received]

    @pytest.fixture
    def broken_source(self) -> Broken:
        url = f"http://127.0.0.1:9/{SECRET_DIR}"
        return Broken({"url": url, "timeout_s": 2}, target=url)


def test_the_signature_is_what_the_standard_webhooks_reference_computes() -> None:
    # The example of the Standard Webhooks specification (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_receiver_verifies_the_delivery_and_gets_the_summary(receiver: Receiver, tmp_path: Path) -> None:
    notifier = build(webhook.KIND, {"url": f"{receiver.url}/hooks/ir", "secret_env": "IR_WEBHOOK_SECRET"}, tmp_path)

    notifier.send(NOTICE)

    [got] = receiver.received
    assert receiver.refused == []
    assert got.headers["webhook-id"] == NOTICE.delivery_id
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 10
    body = got.json()
    assert body["type"] == "investigation.report_ready"
    assert body["investigation_id"] == NOTICE.investigation_id and body["root_cause"]["category"] == "bad_deploy"
    assert body["report_url"] == NOTICE.report_url and "html" not in body and "text" not in body


def test_a_wrong_secret_is_refused_by_the_receiver_as_a_permanent_error(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_SECRET", "whsec_" + base64.b64encode(b"not-the-receivers-secret-at-all!").decode())
    notifier = build(webhook.KIND, {"url": receiver.url, "secret_env": "OTHER_SECRET"}, tmp_path)

    with pytest.raises(SourceError, match="refused the delivery \\(401\\)") as raised:
        notifier.send(NOTICE)

    assert not isinstance(raised.value, RetryableError)
    assert receiver.received == [] and receiver.refused == [NOTICE.delivery_id]


def test_throttling_and_server_errors_are_retryable_with_the_receivers_wait(receiver: Receiver, tmp_path: Path) -> None:
    notifier = build(webhook.KIND, {"url": receiver.url, "secret_env": "IR_WEBHOOK_SECRET"}, tmp_path)
    receiver.script(Answer(429, {"Retry-After": "7"}), Answer(503))

    with pytest.raises(RetryableError) as throttled:
        notifier.send(NOTICE)
    with pytest.raises(RetryableError, match="503"):
        notifier.send(NOTICE)
    notifier.send(NOTICE)

    assert throttled.value.wait_s == 7.0
    assert len(receiver.received) == 1
