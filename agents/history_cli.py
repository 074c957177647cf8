"""The incident history on the command line: `python app.py search ...` and `python app.py index rebuild`."""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from agents import history
from core.runtime import get_store
from integrations.history.qdrant_index import IndexUnavailable


def print_search(text: str, *, service: str | None, category: str | None, since: datetime | None, limit: int, as_json: bool) -> int:
    """Past incidents closest to `text`, as a table or JSON; exit code 3 when the index is unavailable."""
    console = Console()
    try:
        found = history.search(text, service=service, category=category, since=since, limit=limit)
    except IndexUnavailable as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}; `python app.py index rebuild` repairs a local index", highlight=False)
        return 3
    if as_json:
        console.print_json(json.dumps([item.model_dump(exclude_none=True) for item in found]))
        return 0
    if not found:
        console.print("no past incidents match", highlight=False)
        return 0
    table = Table("score", "date", "service", "category", "what happened", "resolved by", "link")
    for item in found:
        table.add_row(
            f"{item.score:.2f}",
            (item.date or "")[:10],
            item.service or "",
            (item.category or "").replace("_", " "),
            item.title,
            item.resolution or "-",
            item.url or "",
        )
    console.print(table)
    return 0


def rebuild_index(*, repair: bool) -> int:
    """Index every stored investigation that is not indexed with its current text, with a progress bar."""
    store = get_store()
    rows = store.finished_investigations()
    index = history.get_index()
    console = Console(stderr=True)
    console.print(f"indexing {len(rows):,} finished investigations into {index.where} with {index.embedder.name}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("index", total=len(rows))
            counts = history.rebuild(rows, store.follow_ups, repair=repair, advance=lambda n: bar.advance(task, n))
    except IndexUnavailable as exc:
        console.print(f"[red]error:[/] {exc}; run again with --repair to rebuild it from the database", highlight=False)
        return 3
    console.print(f"indexed {counts.indexed:,}, already current {counts.unchanged:,}, without a report {counts.skipped:,}", highlight=False)
    return 0
