from __future__ import annotations

import pytest

from core import redaction
from core.redaction import redact, redact_text

SECRETS = [
    ("connecting to postgres://app:hunter2@db:5432/orders", "hunter2"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl", "eyJzdWIiOiIxMjM0NSJ9"),
    ("slack token xoxb-1234567890-0987654321-abcdefghij", "xoxb-1234567890"),
    ('{"api_key": "k3y-abcdef123456"}', "k3y-abcdef123456"),
    ("password=s3cr3t! retry", "s3cr3t!"),
    ("AWS key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
    ("github ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnop"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
    ("sent receipt to jane.doe@example.com", "jane.doe@example.com"),
    ("openai sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijkl"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secret_never_survives_redaction(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "Read timed out. (read timeout=0.025)",
        '"error":"invalid_token","error_description":"The access token expired"',
        "canceling statement due to statement timeout",
        "Connection to inventory-db:5432 refused",
        "pool_size: 20 timeout_ms: 25",
    ],
)
def test_ordinary_error_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_walks_nested_documents() -> None:
    doc = {"a": ["password: x1y2z3"], "b": {"c": "token=abc123def"}, "n": 3}
    out = redact(doc)
    assert out["n"] == 3
    assert "x1y2z3" not in str(out) and "abc123def" not in str(out)


def test_site_specific_patterns_are_added(monkeypatch: pytest.MonkeyPatch) -> None:
    redaction.configure([r"ACME-\d{6}"])
    try:
        assert redact_text("customer ACME-123456 failed") == "customer [REDACTED] failed"
    finally:
        redaction.configure([])


@pytest.mark.parametrize(
    "text",
    [
        "AUTH-4253: Support per-request mfa_method (#1134)",
        "llm_tokens_total=5 secrets_loaded: 3",
        "oauth: refreshed",
        "maxTokens=4096 Tokenizer: bpe OLDPWD=/srv/app",
    ],
)
def test_words_that_merely_contain_a_secret_name_keep_their_values(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("DB_PASSWORD=hunter2hunter", "hunter2hunter"),
        ("access_token: abcdef123456", "abcdef123456"),
        ('"clientSecret": "s3cr3tvalue"', "s3cr3tvalue"),
        ("authorization=Basic-xyz123", "Basic-xyz123"),
        ("apiKey=AbC123xyz", "AbC123xyz"),
        # AWS's own JSON for temporary credentials: camelCase parts.
        ('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG"', "wJalrXUtnFEMI"),
        ('"SessionToken": "FwoGZXIvYXdzEXAMPLE"', "FwoGZXIvYXdzEXAMPLE"),
        ("dbPassword: hunter2hunter", "hunter2hunter"),
        # libpq's variable, the word glued to its prefix, as `set -x` prints it.
        ("+ export PGPASSWORD=hunter2hunter", "hunter2hunter"),
    ],
)
def test_secret_named_keys_are_redacted_in_any_case_and_separator(text: str, secret: str) -> None:
    assert secret not in redact_text(text)
