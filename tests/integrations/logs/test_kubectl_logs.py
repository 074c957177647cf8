"""The `kubectl_logs` kind: the log contract, then saved container output with the pod on every event and no invented times."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import SECRET_DIR, Broken, LogRecord, LogSourceContract, MakeLogSource, Options
from integrations.logs import kubectl_logs
from integrations.logs.kubectl_logs import KubectlLogs, pod_of

ALWAYS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
ENDLESS_BYTES = 1 << 40


class TestKubectlLogsContract(LogSourceContract):
    kind = kubectl_logs.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> Iterator[MakeLogSource]:
        counter = itertools.count()
        sparse: list[Path] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            folder = tmp_path / f"pod-logs-{next(counter)}"
            folder.mkdir()
            path = folder / "checkout-7d9f8c6b5-k2x4p.log"
            with path.open("w", encoding="utf-8") as out:
                for record in records:
                    entry = {"level": record.level, "msg": record.message}
                    out.write(json.dumps({"time": record.ts.isoformat(), **entry} if record.ts else entry) + "\n")
            if endless:
                with path.open("r+b") as grow:
                    grow.truncate(ENDLESS_BYTES)
                sparse.append(path)
            return {"paths": [folder.name]}

        yield make
        for path in sparse:
            path.unlink(missing_ok=True)

    @pytest.fixture
    def broken_source(self) -> Broken:
        pattern = f"{SECRET_DIR}/*.log"
        return Broken({"paths": [pattern]}, target=pattern)


def write(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("name", "pod", "previous"),
    [
        ("cart-7b9d6f5c84-m4tzs.log", "cart-7b9d6f5c84-m4tzs", False),
        ("cart-7b9d6f5c84-m4tzs.previous.log", "cart-7b9d6f5c84-m4tzs", True),
        ("cart-7b9d6f5c84-m4tzs_prev.txt", "cart-7b9d6f5c84-m4tzs", True),
        ("coredns-5d78c9869d-4xk8p", "coredns-5d78c9869d-4xk8p", False),
    ],
)
def test_the_pod_and_whether_it_is_a_previous_container_come_from_the_file_name(name: str, pod: str, previous: bool) -> None:
    assert pod_of(Path(name)) == (pod, previous)


def test_untimed_container_output_keeps_its_order_the_pod_and_no_invented_time(tmp_path: Path) -> None:
    write(tmp_path, "cart-7b9d6f5c84-m4tzs.log", ["Starting gunicorn 22.0.0", "Booting worker with pid: 9"])
    write(
        tmp_path,
        "cart-7b9d6f5c84-m4tzs.previous.log",
        [
            "Starting gunicorn 22.0.0",
            "Traceback (most recent call last):",
            '  File "/srv/app/cart/settings.py", line 41, in from_env',
            '    raise ConfigError(f"environment variable {name} is not set")',
            "cart.settings.ConfigError: environment variable REDIS_URL is not set",
        ],
    )

    events = list(KubectlLogs([str(tmp_path)], Path("/")).events(*ALWAYS))

    # The previous container ran first: its lines come before the current one's.
    assert [e.message for e in events] == [
        "Starting gunicorn 22.0.0",
        "cart.settings.ConfigError: environment variable REDIS_URL is not set",
        "Starting gunicorn 22.0.0",
        "Booting worker with pid: 9",
    ]
    assert {e.pod for e in events} == {"cart-7b9d6f5c84-m4tzs"}
    assert [bool(e.attributes.get("previous")) for e in events] == [True, True, False, False]
    assert all(e.ts is None for e in events)
    assert events[1].frames and events[1].frames[0].file.endswith("settings.py")


def test_prefixed_output_of_several_pods_keeps_each_line_s_own_pod(tmp_path: Path) -> None:
    write(
        tmp_path,
        "all.log",
        [
            "[pod/web-5c9f7d8b6-lq3vn/web] 2026-11-20T21:08:18Z ERROR session lookup failed: connect ECONNREFUSED 10.0.21.14:6379",
            "[pod/web-5c9f7d8b6-x7m2p/web] 2026-11-20T21:08:19Z INFO request completed",
        ],
    )

    events = list(KubectlLogs(["all.log"], tmp_path).events(*ALWAYS))

    assert [(e.pod, e.attributes.get("container")) for e in events] == [("web-5c9f7d8b6-lq3vn", "web"), ("web-5c9f7d8b6-x7m2p", "web")]
    assert events[0].ts == datetime(2026, 11, 20, 21, 8, 18, tzinfo=UTC)


def test_the_pod_option_names_the_pod_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, "output.txt", ["panic: runtime error: invalid memory address or nil pointer dereference"])
    options = kubectl_logs.KubectlLogsOptions(paths=["output.txt"], pod="webhooks-7d4c9b8f6-r5n2k")

    [event] = kubectl_logs.KIND.build(options, tmp_path).events(*ALWAYS)

    assert event.pod == "webhooks-7d4c9b8f6-r5n2k"
