"""Composition root and command line: serve, worker, investigate, demo, search, index, sources, catalog, templates, api-key."""

from __future__ import annotations

import os

# crewai reads these at import time; set them before anything can import it (telemetry, tracing, version check, SIGTERM handlers).
for _key, _value in {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}.items():
    os.environ.setdefault(_key, _value)

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any, NoReturn  # noqa: E402

import typer  # noqa: E402

if TYPE_CHECKING:
    from integrations.health import CheckResult

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Incident Responder: investigate alerts from logs, changes, metrics and runbooks."
)
api_key_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke REST API keys.")
app.add_typer(api_key_app, name="api-key")
sources_app = typer.Typer(help="Source kinds this build knows, and whether a service's sources answer.")
app.add_typer(sources_app, name="sources")
catalog_app = typer.Typer(no_args_is_help=True, help="Check the service catalog (SERVICES_FILE) and print its JSON schema.")
app.add_typer(catalog_app, name="catalog")
index_app = typer.Typer(no_args_is_help=True, help="The incident history index (Qdrant) behind similar incidents and search.")
app.add_typer(index_app, name="index")

EXAMPLES = Path(__file__).resolve().parent / "examples"


def _fail(message: str) -> NoReturn:
    """One clear line per problem and exit code 2: bad input is the caller's to fix, not a crash."""
    for line in message.splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(2)


def _catalog(path: Path | None = None) -> Any:
    """The checked catalog (SERVICES_FILE unless `path`), or every problem in it and exit code 2."""
    from core.catalog import CatalogError
    from integrations.catalog import get_catalog, load_checked_catalog

    try:
        return load_checked_catalog(path) if path is not None else get_catalog()
    except CatalogError as exc:
        _fail(str(exc))


def _setup(*, stderr_logs: bool = True) -> None:
    from core.logging import configure_logging
    from core.redaction import configure as configure_redaction
    from core.settings import get_settings

    settings = get_settings()
    os.environ.setdefault("CREWAI_STORAGE_DIR", str((settings.data_dir / "crewai").resolve()))
    configure_logging(settings.log_format, settings.log_level if stderr_logs else "warning")
    configure_redaction(settings.redaction_patterns)


def _progress_printer() -> Any:
    from rich.console import Console

    console = Console(stderr=True)

    def show(stage: str, message: str, **_: Any) -> None:
        style = {"failed": "bold red", "done": "bold green", "degraded": "yellow"}.get(stage, "cyan")
        console.print(f"[{style}]{stage:>10}[/] {message}", highlight=False)

    return show


def _print_report(report: Any, fmt: str) -> None:
    from agents.render import render

    sys.stdout.write(render(report, fmt).rstrip("\n") + "\n")


@app.command()
def investigate(
    alert: Annotated[Path | None, typer.Option(help="Alert JSON (PagerDuty-like: title, service, created_at, ...).")] = None,
    logs: Annotated[Path | None, typer.Option(help="Folder (or glob) of log files.")] = None,
    repo: Annotated[Path | None, typer.Option(help="Local git repository of the service.")] = None,
    deploys: Annotated[Path | None, typer.Option(help="Deploy events JSON file.")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Metrics CSV (timestamp,metric,labels,value).")] = None,
    runbooks: Annotated[Path | None, typer.Option(help="Folder of Markdown runbooks.")] = None,
    kubectl: Annotated[Path | None, typer.Option(help="Saved kubectl describe / get events output (file or folder).")] = None,
    pod_logs: Annotated[Path | None, typer.Option(help="Saved kubectl logs output, one <pod>[.previous].log per file.")] = None,
    service: Annotated[str | None, typer.Option(help="Investigate a service from SERVICES_FILE instead of paths.")] = None,
    at: Annotated[str | None, typer.Option(help="When it happened: ISO time or HH:MM (UTC); default now.")] = None,
    since: Annotated[str | None, typer.Option(help="How far back to look, e.g. 2h (default: the catalog's lookback).")] = None,
    what: Annotated[str, typer.Option("--what", help="What is wrong, in words (with --service).")] = "",
    fmt: Annotated[str, typer.Option("--format", help="json or markdown.")] = "markdown",
) -> None:
    """Investigate an alert and print the report on stdout (progress on stderr)."""
    _setup()
    if fmt not in ("json", "markdown"):
        _fail("--format must be json or markdown")
    if service:
        report = _investigate_service(service, at=at, since=since, what=what)
    else:
        report = _investigate_paths(
            alert,
            logs=logs,
            repo=repo,
            deploys=deploys,
            metrics=metrics,
            runbooks=runbooks,
            kubectl=kubectl,
            pod_logs=pod_logs,
            since=since,
        )
    _print_report(report, fmt)


def _investigate_paths(
    alert_path: Path | None,
    *,
    logs: Path | None,
    repo: Path | None,
    deploys: Path | None,
    metrics: Path | None,
    runbooks: Path | None,
    since: str | None,
    kubectl: Path | None = None,
    pod_logs: Path | None = None,
) -> Any:
    from agents.pipeline import run_local
    from core.alert import AlertError, alert_from_payload
    from core.catalog import parse_duration

    if alert_path is None:
        _fail("give --alert FILE (with --logs/--repo ...) or --service NAME")
    try:
        payload = json.loads(alert_path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read alert file {alert_path}: {exc.strerror}")
    except ValueError as exc:
        _fail(f"alert file {alert_path} is not JSON: {exc}")
    try:
        alert = alert_from_payload(payload, source="cli")
    except AlertError as exc:
        _fail(f"{alert_path}: {exc}")
    flags = (("--logs", logs), ("--repo", repo), ("--deploys", deploys), ("--metrics", metrics), ("--runbooks", runbooks))
    for label, path in (*flags, ("--kubectl", kubectl), ("--pod-logs", pod_logs)):
        if path is not None and not path.exists():
            _fail(f"{label} {path} does not exist")
    try:
        lookback = parse_duration(since) if since else 6 * 3600
    except ValueError as exc:
        _fail(f"--since: {exc}")
    return run_local(
        alert=alert,
        logs=logs,
        repo=repo,
        deploys=deploys,
        metrics=metrics,
        runbooks=runbooks,
        kubectl=kubectl,
        pod_logs=pod_logs,
        lookback_s=lookback,
        progress=_progress_printer(),
    )


def _investigate_service(name: str, *, at: str | None, since: str | None, what: str) -> Any:
    from agents.flows import window_for
    from agents.jobs import investigate as run_job
    from core.alert import Alert
    from core.catalog import parse_duration
    from core.models import Investigation, Source
    from core.progress import subscribe
    from core.runtime import get_store
    from core.timeparse import parse_at

    catalog = _catalog()
    resolved = catalog.resolve(name)
    if resolved is None:
        hint = catalog.close_matches(name)
        _fail(
            f"unknown service '{name}'"
            + (f"; did you mean {', '.join(hint)}?" if hint else f"; known: {', '.join(catalog.names()) or 'none (set SERVICES_FILE)'}")
        )
    try:
        when = parse_at(at) if at else None
        since_s = parse_duration(since) if since else None
    except ValueError as exc:
        _fail(str(exc))
    window = window_for(catalog, at=when, since_s=since_s)
    alert = Alert(
        title=what or f"Investigation of {resolved}", summary=what, service=resolved, created_at=window.at, source=Source.cli.value
    )
    store = get_store()
    row = store.create_investigation(
        Investigation(
            source=Source.cli.value,
            service=resolved,
            title=alert.title,
            alert=alert.model_dump(mode="json"),
            window_start=window.start,
            window_end=window.end,
            at=window.at,
        )
    )
    printer = _progress_printer()
    subscribe(lambda _id, event: printer(event.stage, event.message))
    run_job(row.id)
    return store.require(row.id).report


@app.command()
def demo(fmt: Annotated[str, typer.Option("--format", help="json or markdown.")] = "markdown") -> None:
    """Investigate the bundled example incident (no Slack, no LLM, no services needed)."""
    example = EXAMPLES / "checkout-discount-crash"
    os.environ["OPENAI_API_KEY"] = ""
    investigate(
        alert=example / "alert.json",
        logs=example / "logs",
        # The git source imports the shipped fast-export stream once, into DATA_DIR/repos.
        repo=example / "repo.fi",
        deploys=example / "deploys.json",
        metrics=example / "metrics.csv",
        runbooks=example / "runbooks",
        service=None,
        at=None,
        since=None,
        what="",
        fmt=fmt,
    )


@app.command()
def templates(file: Annotated[Path | None, typer.Argument(help="One log message per line; stdin when omitted.")] = None) -> None:
    """Mine log templates: for each input line, print `<group id>\\t<template>`."""
    from agents.evidence.templates import mine_lines

    if file is None:
        stream = sys.stdin
        mine_lines((line.rstrip("\n") for line in stream), sys.stdout)
        return
    try:
        with file.open(encoding="utf-8", errors="replace") as fh:
            mine_lines((line.rstrip("\n") for line in fh), sys.stdout)
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    workers: Annotated[int, typer.Option(envvar="WEB_CONCURRENCY")] = 1,
) -> None:
    """Run the web process: REST API, dashboard, Slack events, PagerDuty webhooks, /metrics."""
    import uvicorn

    _setup()
    _catalog()
    from core.settings import get_settings

    if get_settings().slack_app_token is not None:
        import threading

        from bot.socket import start_socket_mode

        threading.Thread(target=start_socket_mode, name="slack-socket-mode", daemon=True).start()
    uvicorn.run("web.app:create_app", factory=True, host=host, port=port, workers=workers, log_config=None, access_log=False)


@app.command()
def worker(burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False) -> None:
    """Run a worker that takes investigations, follow-up answers and Jira tickets from the queue."""
    from agents.worker import run_worker
    from core.settings import get_settings

    _setup()
    _catalog()
    if get_settings().slack_bot_token is not None:
        # The Slack thread follows progress from here, the worker, never from the web process.
        from bot.progress import register

        register()
    run_worker(burst=burst)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from core.db import migrate as run_migrations
    from core.settings import get_settings

    _setup()
    run_migrations(get_settings().effective_database_url)
    typer.echo("database is up to date")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What happened, in words or a log line.")],
    service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this root-cause category (bad_deploy, ...).")] = None,
    since: Annotated[str | None, typer.Option(help="Only incidents created at or after this ISO 8601 time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search past incidents by meaning: have we seen this before, and what fixed it?"""
    from datetime import datetime

    from agents.history_cli import print_search

    _setup(stderr_logs=False)
    try:
        after = datetime.fromisoformat(since) if since else None
    except ValueError:
        _fail(f"--since: '{since}' is not an ISO 8601 time")
    raise typer.Exit(print_search(text, service=service, category=category, since=after, limit=limit, as_json=as_json))


@index_app.command("rebuild")
def index_rebuild(
    repair: Annotated[bool, typer.Option(help="Drop the index first (a corrupt or unreadable one) and index everything.")] = False,
) -> None:
    """Index every stored investigation not yet indexed with its current text (idempotent, resumable)."""
    from agents.history_cli import rebuild_index

    _setup(stderr_logs=False)
    raise typer.Exit(rebuild_index(repair=repair))


@sources_app.callback(invoke_without_command=True)
def sources_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False) -> None:
    """Every source kind with its role and options (name, type, default, description)."""
    if ctx.invoked_subcommand is not None:
        return
    from integrations.describe import describe_kinds

    rows = describe_kinds()
    if as_json:
        typer.echo(json.dumps([row.to_dict() for row in rows], indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Source kinds (catalog: services.NAME.ROLE: [{kind: ..., options}])", show_lines=True)
    for column in ("role", "kind", "option", "type", "default", "description"):
        table.add_column(column)
    for row in rows:
        for index, option in enumerate(row.options):
            default = "required" if option.required else ("" if option.default in (None, [], {}) else repr(option.default))
            head = (row.role, row.kind) if index == 0 else ("", "")
            table.add_row(*head, option.name, escape(option.type), escape(default), escape(option.description))
    # Piped into a file or a pager, the table keeps the width it needs instead of 80 columns.
    Console(width=None if sys.stdout.isatty() else 180).print(table)


@sources_app.command("check")
def sources_check(service: Annotated[str | None, typer.Argument(help="One service; all when omitted.")] = None) -> None:
    """Build each source of the catalog's services and ask it whether it answers; exit 1 when one does not."""
    from integrations.health import check_ops_targets, check_service

    _setup(stderr_logs=False)
    catalog = _catalog()
    names = catalog.names()
    if service is not None:
        resolved = catalog.resolve(service)
        if resolved is None:
            _fail(f"unknown service '{service}'; known: {', '.join(names) or 'none (set SERVICES_FILE)'}")
        names = [resolved]
    failed = sum(_echo_checks(name, check_service(catalog, name)) for name in names)
    if service is None:
        failed += _echo_checks("defaults.ops_notify", check_ops_targets(catalog))
    raise typer.Exit(1 if failed else 0)


def _echo_checks(name: str, results: list[CheckResult]) -> int:
    """Print one line per result; the number that failed."""
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        typer.echo(f"{mark} {name} {result.label}: {result.detail}")
    return sum(not result.ok for result in results)


@catalog_app.command("check")
def catalog_check(file: Annotated[Path | None, typer.Argument(help="Catalog file; SERVICES_FILE when omitted.")] = None) -> None:
    """Check a catalog's shape and every source's kind and options; print every problem as FILE:LINE and exit 2."""
    from core.settings import get_settings

    path = file or get_settings().services_file
    if path is None:
        _fail("give a catalog file or set SERVICES_FILE")
    catalog = _catalog(Path(path))
    count = sum(len(specs) for spec in catalog.services.values() for specs in spec.sources.values())
    typer.echo(f"{path}: {len(catalog.services)} services, {count} sources, no problems")


@catalog_app.command("schema")
def catalog_schema() -> None:
    """Print the catalog's JSON schema, generated from every kind's options (committed as contracts/services.schema.json)."""
    from integrations.describe import catalog_schema as generate

    typer.echo(json.dumps(generate(), indent=2))


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Argument()], scope: Annotated[list[str] | None, typer.Option("--scope", help="read, write, admin")] = None
) -> None:
    """Create an API key; the key is printed once."""
    from web.auth import create_api_key

    _setup(stderr_logs=False)
    try:
        key, row = create_api_key(name, scope or ["read"])
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"id={row.id} scopes={','.join(row.scopes)}\n{key}")


@api_key_app.command("list")
def api_key_list() -> None:
    """List API keys (never the keys themselves)."""
    from core.runtime import get_store

    _setup(stderr_logs=False)
    for row in get_store().list_api_keys():
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        typer.echo(f"{row.id}\t{row.name}\t{row.prefix}…\t{','.join(row.scopes)}\t{state}")


@api_key_app.command("revoke")
def api_key_revoke(key_id: Annotated[int, typer.Argument()]) -> None:
    """Revoke an API key by id."""
    from core.runtime import get_store
    from core.store import NotFound

    _setup(stderr_logs=False)
    try:
        get_store().revoke_api_key(key_id)
    except NotFound as exc:
        _fail(str(exc))
    typer.echo(f"revoked {key_id}")


if __name__ == "__main__":
    app()
