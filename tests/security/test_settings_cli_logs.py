"""Secrets that are ours (Settings) never print, the CLI's JSON report of the planted incident carries none of the
planted ones, and our own log lines mask secrets wherever they sit in an event, exception traces included.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from planted import (
    CREDENTIAL_URL,
    EMAIL,
    ERROR_SIGNATURE,
    EXAMPLE,
    GITHUB_TOKEN,
    OPENAI_KEY,
    PASSWORD_KV,
    PEM,
    SLACK_TOKEN,
    leaks,
)

from core.logging import configure_logging
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
# Our own credentials, one per SecretStr field: each distinctive, so a print of any of them is found.
OWN_SECRETS = {
    "slack_bot_token": "xoxb-own-bot-SETTINGSbotTOKEN",
    "slack_signing_secret": "SETTINGSsigningSECRET",
    "slack_app_token": "xapp-own-SETTINGSappTOKEN",
    "openai_api_key": "sk-SETTINGSopenaiKEY000000",
    "jira_api_token": "SETTINGSjiraTOKEN",
    "session_secret": "SETTINGSsessionSECRET",
    "pagerduty_api_token": "SETTINGSpagerdutyAPItoken",
    "servicenow_password": "SETTINGSservicenowPASSWORD",
    "servicenow_token": "SETTINGSservicenowTOKEN",
    "qdrant_api_key": "SETTINGSqdrantKEY",
}
PD_SECRET = "SETTINGSpagerdutySECRET"


def secret_fields() -> set[str]:
    from pydantic import SecretStr

    return {name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation) or field.annotation is SecretStr}


def test_every_secret_setting_is_covered_by_this_test() -> None:
    # A new SecretStr setting must be added above, or the test below would pass without looking at it.
    assert secret_fields() == {*OWN_SECRETS, "pagerduty_webhook_secrets"}


def test_settings_with_every_secret_set_never_print_one() -> None:
    settings = Settings(**OWN_SECRETS, pagerduty_webhook_secrets=[PD_SECRET])  # type: ignore[arg-type]

    printed = {
        "repr": repr(settings),
        "str": str(settings),
        "model_dump": str(settings.model_dump()),
        "model_dump json mode": json.dumps(settings.model_dump(mode="json")),
        "model_dump_json": settings.model_dump_json(),
        "fields": str([getattr(settings, name) for name in Settings.model_fields]),
    }

    for how, text in printed.items():
        shown = [name for name, value in [*OWN_SECRETS.items(), ("pagerduty_webhook_secrets", PD_SECRET)] if value in text]
        assert not shown, (how, shown)
    assert settings.llm_enabled and settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == OWN_SECRETS["openai_api_key"], "the value is still there for its one use"


def test_cli_json_report_of_the_planted_incident_carries_no_secret(planted_inputs: dict[str, Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "JIRA_", "SERVICES_"))}
    env |= {"APP_ENV": "test", "DATA_DIR": str(tmp_path / "var"), "LOG_FORMAT": "json", "LOG_LEVEL": "debug"}
    done = subprocess.run(
        [
            sys.executable,
            "app.py",
            "investigate",
            "--alert",
            str(EXAMPLE / "alert.json"),
            "--logs",
            str(planted_inputs["logs"]),
            "--repo",
            str(planted_inputs["repo"]),
            "--deploys",
            str(EXAMPLE / "deploys.json"),
            "--metrics",
            str(planted_inputs["metrics"]),
            "--runbooks",
            str(EXAMPLE / "runbooks"),
            "--format",
            "json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["root_cause"]["category"] == "bad_deploy"
    assert ERROR_SIGNATURE in json.dumps(report["signatures"])
    assert "[REDACTED]" in done.stdout and "[EMAIL]" in done.stdout, "the secrets were in the evidence, masked"
    assert leaks(done.stdout) == []
    assert leaks(done.stderr) == []


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    yield stream
    configure_logging("console", "info", stream=sys.stderr)


def test_log_lines_mask_secrets_in_messages_nested_values_and_exception_traces(json_log: io.StringIO) -> None:
    log = structlog.get_logger("security-test")
    log.info(f"connecting to {CREDENTIAL_URL}", token=SLACK_TOKEN, context={"owner": EMAIL, "keys": [GITHUB_TOKEN]})
    try:
        raise RuntimeError(f"gateway refused key {OPENAI_KEY} with password={PASSWORD_KV}")
    except RuntimeError:
        log.exception("gateway_failed")
        logging.getLogger("some.library").exception("library saw %s", PEM)

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert [line["event"].split()[0] for line in lines] == ["connecting", "gateway_failed", "library"]
    assert "RuntimeError" in lines[1]["exception"], "the trace is still logged"
    assert leaks(json_log.getvalue()) == []


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the console renderer colours its output as it does for a developer."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["piped", "terminal"])
def test_console_log_traces_mask_secrets_in_exception_messages_causes_and_locals(stream: io.StringIO) -> None:
    configure_logging("console", "debug", stream=stream)
    log = structlog.get_logger("security-test")
    try:
        dsn = CREDENTIAL_URL  # a local a rich trace would print
        try:
            raise ConnectionError(f"cannot reach {dsn} with token {SLACK_TOKEN} " + "x" * 200)
        except ConnectionError as cause:
            raise RuntimeError(f"gateway refused key {OPENAI_KEY} with password={PASSWORD_KV}") from cause
    except RuntimeError:
        log.exception("gateway_failed")
        logging.getLogger("some.library").exception("library saw %s", GITHUB_TOKEN)
    configure_logging("console", "info", stream=sys.stderr)

    text = stream.getvalue()
    assert text.count("RuntimeError: gateway refused") == 2 and "ConnectionError: cannot reach" in text, (
        "both traces and their cause are still logged"
    )
    assert "[REDACTED]" in text
    assert leaks(text) == []
