"""Stack traces read line by line: Java, C#, JavaScript, Python and Go frames, the exception and its root cause."""

from __future__ import annotations

import re
from typing import Final

from integrations.logs.base import Frame, LogEvent
from integrations.logs.parsing.events import MAX_FOLDED_LINES, MAX_FRAMES, MAX_MESSAGE, MAX_RAW, clip

_JAVA_FRAME: Final = re.compile(r"at ([^\s(]+)\(([^)]*)\)\s*$")
_CSHARP_FRAME: Final = re.compile(r"at ([^\s(]+)\([^)]*\) in (.+):line (\d{1,9})\s*$")
# Both shapes are written so that no input makes them backtrack more than linearly.
_JS_FRAME: Final = re.compile(r"at (?:async )?([^()]+?) \((.+):(\d{1,9}):\d+\)\s*$")
_JS_BARE_FRAME: Final = re.compile(r"at (?:async )?()(.+):(\d{1,9}):\d+\s*$")
_PYTHON_FRAME: Final = re.compile(r'File "([^"]+)", line (\d{1,9})(?:, in (.+))?')
_GO_FILE: Final = re.compile(r"(\S+\.go):(\d{1,9})(?: \+0x[0-9a-f]+)?\s*$")
EXCEPTION_LINE: Final = re.compile(
    r"Exception in thread |(?:[A-Za-z_$][\w$]*\.)*[\w$]*(?:Exception|Error|Throwable|Fault)(?::|$)"
    r"|(?:[a-z_][\w]*\.)+[A-Z][\w$]*(?::|$)|panic: |fatal error: "
)
_CONTINUATION_PREFIXES: Final = (
    "Caused by:",
    "Suppressed:",
    "Traceback (",
    "During handling",
    "The above exception",
    "goroutine ",
    "created by ",
    "...",
    "[signal ",
    "Error: ",
    "panic: ",
    "fatal error: ",
)


def looks_like_frame(text: str) -> bool:
    return text.startswith(("at ", 'File "')) or ".go:" in text[:500]


def looks_like_continuation(line: str) -> bool:
    return line.startswith(_CONTINUATION_PREFIXES) or EXCEPTION_LINE.match(line[:300]) is not None


def _java_frame(qualified: str, location: str) -> Frame | None:
    """`com.acme.Foo.bar` + `Foo.java:42` → com/acme/Foo.java, the path the repository holds."""
    qualified = qualified.rpartition("/")[2]
    file, _, number = location.partition(":")
    if "." not in file or " " in file or file.startswith("<"):
        return None
    package = qualified.rsplit(".", 2)[0] if qualified.count(".") >= 2 else ""
    path = f"{package.replace('.', '/')}/{file}" if package else file
    return Frame(path, qualified, int(number) if number.isascii() and number.isdecimal() and len(number) < 10 else None)


def _go_function(line: str) -> str:
    """`main.(*Server).handle(0x0, {...})` → `main.(*Server).handle`; `created by x in goroutine 1` → `x`."""
    text = line.strip()
    if text.startswith("created by "):
        text = text[11:].partition(" in goroutine ")[0]
    if text.endswith(")"):
        depth = 0
        for index in range(len(text) - 1, -1, -1):
            char = text[index]
            depth += char == ")"
            depth -= char == "("
            if depth == 0:
                return text[:index]
    return text


class StackReader:
    """Reads the lines of a stack trace one at a time: frames, the exception line, the root cause."""

    __slots__ = ("callee", "chained", "exception", "frames", "in_traceback", "root_cause")

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.exception: str | None = None
        self.root_cause: str | None = None
        self.in_traceback = False
        # Python printed "During handling of the above exception..." and the next traceback belongs here too.
        self.chained = False
        self.callee = ""

    def feed(self, line: str) -> None:
        if not line:
            return
        if line[0] in " \t":
            self._indented(line, line.lstrip())
        elif line.startswith("Caused by: "):
            self.root_cause = line[11:].strip()
            # A long outer trace must not crowd out the root cause's frames, which matter most.
            del self.frames[MAX_FRAMES // 2 :]
        elif line.startswith("Traceback (most recent call last)"):
            self.in_traceback = True
            self.chained = False
        elif line.startswith(("During handling of the above exception", "The above exception was the direct cause")):
            self.chained = True
        elif self.in_traceback:
            # Python names the exception on the traceback's last line; a chained one wins.
            self.exception = line.strip()
            self.in_traceback = False
        elif self.exception is None and EXCEPTION_LINE.match(line[:300]) is not None:
            self.exception = line.strip()
        elif line.startswith(("at ", 'File "')):
            self._indented(line, line)
        else:
            self.callee = line

    def _indented(self, line: str, body: str) -> None:
        if len(self.frames) >= MAX_FRAMES:
            return
        frame: Frame | None = None
        if body.startswith("at "):
            frame = self._at_frame(body)
        elif body.startswith('File "'):
            if (match := _PYTHON_FRAME.match(body)) is not None:
                frame = Frame(match.group(1), (match.group(3) or "").strip(), int(match.group(2)))
        elif body.startswith("Caused by: "):
            self.root_cause = body[11:].strip()
        elif self.callee and (match := _GO_FILE.match(body)) is not None:
            frame = Frame(match.group(1), _go_function(self.callee), int(match.group(2)))
            self.callee = ""
        if frame is not None:
            self.frames.append(frame)

    @staticmethod
    def _at_frame(body: str) -> Frame | None:
        if (match := _JAVA_FRAME.match(body)) is not None:
            return _java_frame(match.group(1), match.group(2))
        if (match := _CSHARP_FRAME.match(body)) is not None:
            return Frame(match.group(2), match.group(1), int(match.group(3)))
        if (match := _JS_FRAME.match(body) or _JS_BARE_FRAME.match(body)) is not None:
            return Frame(match.group(2), match.group(1), int(match.group(3)))
        return None

    def started(self) -> bool:
        return bool(self.frames) or self.exception is not None or self.in_traceback

    def exception_text(self) -> str | None:
        if self.root_cause and self.root_cause != self.exception:
            return f"{self.exception} | Caused by: {self.root_cause}" if self.exception else self.root_cause
        return self.exception


def attach_stack(event: LogEvent, stack: str | None, error: str | None) -> None:
    """Frames and exception from a stack a structured line carries in a field, and the error it states."""
    reader = StackReader()
    if stack:
        for stack_line in stack.splitlines()[: MAX_FOLDED_LINES * 2]:
            reader.feed(clip(stack_line, MAX_RAW))
    event.frames = reader.frames
    first = stack.lstrip().partition("\n")[0] if stack else ""
    fallback = error or (first if first and not looks_like_frame(first) else None)
    event.exception = clip(reader.exception_text() or fallback or "", MAX_MESSAGE) or None
    if event.exception and event.exception not in event.message:
        event.message = clip(f"{event.message}: {event.exception}" if event.message else event.exception, MAX_MESSAGE)
