"""Redaction of secrets in text before it leaves the worker (Slack, Jira, the LLM, logs, the dashboard).

Patterns err on the side of redacting: a redacted non-secret costs a reader a
moment, a leaked token costs a rotation and an incident of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

MASK = "[REDACTED]"

_BUILTIN: list[tuple[str, str]] = [
    # PEM private keys, whole block.
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", MASK),
    # Credentials inside URLs: scheme://user:password@host
    (r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?P<post>@)", r"\g<pre>" + MASK + r"\g<post>"),
    # Authorization headers and bearer tokens.
    (r"(?i)(?P<pre>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\g<pre>" + MASK),
    (r"(?i)(?P<pre>\bbasic\s+)[A-Za-z0-9+/=]{8,}", r"\g<pre>" + MASK),
    # Well-known token shapes.
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", MASK),
    (r"\bxapp-[A-Za-z0-9-]{10,}", MASK),
    (r"\bgh[pousr]_[A-Za-z0-9]{20,}", MASK),
    (r"\bgithub_pat_[A-Za-z0-9_]{20,}", MASK),
    (r"\bglpat-[A-Za-z0-9_-]{16,}", MASK),
    (r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,}", MASK),
    (r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}", MASK),
    (r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", MASK),
    (r"\bAIza[0-9A-Za-z_-]{35}\b", MASK),
    (r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", MASK),
    # key=value / "key": "value" where the key names a secret.
    (
        # The secret word must stand as its own part of the key (db_password, access-token, apiKey), so that
        # "AUTH-4253: Support ..." or "tokens_total=5" keep their text. A camelCase boundary is a part's edge too:
        # AWS writes credentials as "SecretAccessKey" and "SessionToken" (an STS answer logged to CloudWatch). An
        # upper-case name may glue a password, secret or token to its prefix: libpq's PGPASSWORD, which a `set -x`
        # entrypoint prints into a container's termination message.
        r"(?i)(?P<pre>[\"']?(?<![\w.-])(?:[\w.-]*[_.-]|(?-i:[\w.-]*[a-z0-9](?=[A-Z])|[A-Z][A-Z0-9]*(?=PASSWORD|PASSWD|SECRET|TOKEN)))?"
        r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
        r"|private[_-]?key|client[_-]?secret|credentials?|auth[_-]?token|authorization)"
        r"(?:(?:[_.-]|(?-i:(?<=[a-z0-9])(?=[A-Z])))[\w.-]*)?[\"']?\s*[:=]\s*[\"']?)"
        r"(?!\[REDACTED\])[^\s\"',;&}]{3,}",
        r"\g<pre>" + MASK,
    ),
    # E-mail addresses are personal data.
    (r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b", "[EMAIL]"),
]


@lru_cache(maxsize=16)
def _compiled(extra: tuple[str, ...]) -> list[tuple[re.Pattern[str], str]]:
    rules = [(re.compile(p), r) for p, r in _BUILTIN]
    rules.extend((re.compile(p), MASK) for p in extra)
    return rules


_extra: tuple[str, ...] = ()


def configure(extra_patterns: Iterable[str]) -> None:
    """Add site-specific patterns (REDACTION_PATTERNS) to the built-in ones."""
    global _extra
    _extra = tuple(extra_patterns)
    for pattern in _extra:
        re.compile(pattern)


def redact_text(text: str) -> str:
    if not text:
        return text
    for pattern, replacement in _compiled(_extra):
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """Redact every string inside a JSON-like value (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
