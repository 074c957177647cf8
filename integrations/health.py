"""`sources check`: build each source of a service and ask it, within a deadline, whether it answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from core.catalog import Catalog
from core.redaction import redact_text
from integrations.errors import SourceError
from integrations.registry import BuiltSource, ServiceSources, build_ops_targets, build_sources
from integrations.roles import ROLES

CHECK_DEADLINE_S = 20.0


@dataclass(frozen=True)
class CheckResult:
    label: str
    ok: bool
    detail: str


def check_service(catalog: Catalog, name: str, deadline_s: float = CHECK_DEADLINE_S) -> list[CheckResult]:
    """One result per source of `name`: built and answering, or why not (redacted: it may quote a URL with credentials)."""
    return _check_built(build_sources(catalog, catalog.services[name]), deadline_s)


def check_ops_targets(catalog: Catalog, deadline_s: float = CHECK_DEADLINE_S) -> list[CheckResult]:
    """One result per ops target (`defaults.ops_notify`), checked without sending anything."""
    return _check_built(build_ops_targets(catalog), deadline_s)


def _check_built(built: ServiceSources, deadline_s: float) -> list[CheckResult]:
    results = [CheckResult(d.component, False, redact_text(d.reason)) for d in built.errors]
    # Not a `with` block: a source that hangs must not hold the command past its deadline.
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="source-check")
    entries = [entry for role in ROLES for entry in built.entries(role)]
    futures = [pool.submit(_check, entry) for entry in entries]
    for entry, future in zip(entries, futures, strict=True):
        try:
            detail = future.result(timeout=deadline_s)
        except FutureTimeout:
            results.append(CheckResult(entry.label, False, f"no answer within {deadline_s:.0f}s"))
            continue
        except SourceError as exc:
            results.append(CheckResult(entry.label, False, redact_text(str(exc))))
            continue
        except Exception as exc:  # noqa: BLE001  (a check reports any failure as the source's, never crashes the command)
            results.append(CheckResult(entry.label, False, redact_text(f"{type(exc).__name__}: {exc}")))
            continue
        results.append(CheckResult(entry.label, True, redact_text(detail)))
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def _check(entry: BuiltSource) -> str:
    if entry.kind is None or entry.kind.check is None:
        return "built (this kind has no check)"
    return entry.kind.check(entry.source)
