"""Every log format the parser knows, one `Format` record each, and the dispatch tables derived from them.

A line is offered to the formats that can start with its first character, in the order
of `FORMATS`; a character no format names ("a word") goes to the formats that accept
`OTHER` lines. Fallbacks come after the specific formats of that character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from integrations.logs.parsing.access import parse_envoy, parse_nginx_access
from integrations.logs.parsing.events import Parser
from integrations.logs.parsing.json_lines import parse_json
from integrations.logs.parsing.logfmt import parse_logfmt
from integrations.logs.parsing.text import parse_bracket_iso_text, parse_iso_text, parse_timestamped_text
from integrations.logs.parsing.text_formats import (
    parse_celery,
    parse_k8s_event,
    parse_level_prefix,
    parse_nginx_error,
    parse_postgres,
    parse_redis,
)

DIGITS: Final = "0123456789"
# In `Format.starts`: also lines whose first character no format names.
OTHER: Final = "\x00"


@dataclass(frozen=True, slots=True)
class Format:
    """One log format: how to parse a line of it, and when to try."""

    name: str
    parse: Parser
    # The characters a line of this format can start with; OTHER stands for those no format names.
    starts: str
    # Tried after the specific formats and never remembered for the next line: it accepts too much to go first.
    fallback: bool = False
    # Its messages may run on over lines that carry no prefix of their own.
    free_text: bool = False


# In the order they are tried: the stricter a format, the earlier.
FORMATS: Final = (
    Format("json", parse_json, "{"),
    Format("celery", parse_celery, "[", free_text=True),
    Format("envoy", parse_envoy, "["),
    Format("kubernetes-event", parse_k8s_event, DIGITS),
    Format("postgres", parse_postgres, DIGITS),
    Format("iso-text", parse_iso_text, DIGITS, free_text=True),
    Format("nginx-error", parse_nginx_error, DIGITS),
    Format("redis", parse_redis, DIGITS),
    Format("logfmt", parse_logfmt, OTHER),
    Format("level-prefix", parse_level_prefix, OTHER, free_text=True),
    # The client address may be a name or an IPv6 address as well as an IPv4 one.
    Format("nginx-access", parse_nginx_access, DIGITS + OTHER),
    Format("bracket-iso-text", parse_bracket_iso_text, "[", fallback=True, free_text=True),
    Format("timestamped-text", parse_timestamped_text, DIGITS, fallback=True, free_text=True),
)


def _tables(*, fallback: bool) -> tuple[dict[str, tuple[Format, ...]], tuple[Format, ...]]:
    """Per first character, its specific formats (or its fallbacks), in order; and those of characters no format names."""

    def starting(char: str) -> tuple[Format, ...]:
        return tuple(f for f in FORMATS if char in f.starts and f.fallback is fallback)

    named = {char for fmt in FORMATS for char in fmt.starts if char != OTHER}
    return {char: starting(char) for char in sorted(named)}, starting(OTHER)


SPECIFIC, SPECIFIC_OTHER = _tables(fallback=False)
FALLBACKS, FALLBACKS_OTHER = _tables(fallback=True)
