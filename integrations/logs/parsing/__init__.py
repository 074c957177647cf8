"""Physical log lines in, logical `LogEvent`s out.

The format is detected per line, so one file may mix formats and nothing needs
configuring. Multi-line events (Java stack traces, Python tracebacks, Go panics,
PostgreSQL DETAIL lines) are folded into the event they continue, per pod when
lines carry a `[pod/<name>/<container>]` prefix, because several pods' output is
often interleaved in one file. Every size is capped so that a hostile or broken
file cannot exhaust memory, and no input makes `parse_stream` raise.

Modules: `folding` (the entry point, `parse_stream`), `formats` (the list of formats
and the dispatch derived from it), one module per family of formats (`json_lines`,
`logfmt`, `text`, `text_formats`, `access`), `stacks`, `times`, `events` (caps and
the event constructor) and `fields` (typed fields from structured keys).
"""

from integrations.logs.parsing.events import MAX_FOLDED_LINES, MAX_FRAMES, MAX_LINE, MAX_MESSAGE, MAX_OPEN_EVENTS, MAX_RAW, Parser
from integrations.logs.parsing.fields import read_fields
from integrations.logs.parsing.folding import parse_stream
from integrations.logs.parsing.formats import FORMATS, Format
from integrations.logs.parsing.times import normalize_level

__all__ = [
    "FORMATS",
    "MAX_FOLDED_LINES",
    "MAX_FRAMES",
    "MAX_LINE",
    "MAX_MESSAGE",
    "MAX_OPEN_EVENTS",
    "MAX_RAW",
    "Format",
    "Parser",
    "normalize_level",
    "parse_stream",
    "read_fields",
]
