"""Runbooks from a folder of Markdown files; the title is the first heading."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.plugin import SourceKind, SourceOptions, resolve_path
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


class RunbookFolderOptions(SourceOptions):
    path: str = Field(description="folder of Markdown runbooks (searched recursively); the first heading is the title")


def _build(options: RunbookFolderOptions, base_dir: Path) -> RunbookFolder:
    return RunbookFolder(resolve_path(options.path, base_dir), name=options.name or "runbooks_dir")


def _check(source: RunbookFolder) -> str:
    return f"{len(source.runbooks())} runbooks"


KIND = SourceKind(
    name="runbooks_dir",
    role=roles.RUNBOOKS,
    options=RunbookFolderOptions,
    build=_build,
    check=_check,
    summary="a folder of Markdown runbooks",
)
