"""crewai's switches, which it reads when it is imported.

`app.py` and the test suite set them first thing; this is the same rule made
sure of at the last moment, in case a process reaches the crew another way.
Telemetry and crewai's own tracing go off; OTEL_SDK_DISABLED is never touched,
because it would also switch off our own spans.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CREWAI_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}


class CrewaiImportedTooEarly(RuntimeError):
    """crewai was imported before its telemetry was switched off: a bug in whoever imported it."""


def ensure_crewai_env(data_dir: Path) -> None:
    wrong = {key for key, value in CREWAI_ENV.items() if os.environ.get(key, "").lower() != value}
    if wrong and "crewai" in sys.modules:
        raise CrewaiImportedTooEarly(
            f"crewai was imported before {', '.join(sorted(wrong))} were set; set them at process start (app.py does)"
        )
    os.environ.update(CREWAI_ENV)
    os.environ.setdefault("CREWAI_STORAGE_DIR", str((data_dir / "crewai").resolve()))


def preload_crewai(data_dir: Path) -> None:
    """Import crewai once in the worker's parent: RQ forks a work horse per job, which then inherits it for free.

    Called before RQ installs its signal handlers, so RQ's warm shutdown still owns SIGTERM.
    """
    ensure_crewai_env(data_dir)
    import crewai  # noqa: F401
