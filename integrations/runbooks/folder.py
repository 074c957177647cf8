"""Runbooks from a folder of Markdown files; the title is the first heading."""

from __future__ import annotations

from pathlib import Path

from integrations.errors import SourceError
from integrations.runbooks.base import Runbook

MAX_RUNBOOK_BYTES = 200_000


class RunbookFolder:
    def __init__(self, path: Path, *, name: str = "runbooks_dir") -> None:
        self.path = path
        self.name = name

    def runbooks(self) -> list[Runbook]:
        if not self.path.is_dir():
            raise SourceError(f"runbook folder {self.path} does not exist")
        found = []
        for file in sorted(self.path.rglob("*.md")):
            try:
                text = file.read_bytes()[:MAX_RUNBOOK_BYTES].decode("utf-8", "replace")
            except OSError:
                continue
            title = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), file.stem.replace("-", " "))
            found.append(Runbook(title=title, path=str(file), text=text))
        return found
