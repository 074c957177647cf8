"""Log units read in worker processes, so that parsing and aggregation use every core.

The units come from any log source that declares the `SplittableLogSource` ability;
this module knows none of them. A worker is a fresh interpreter started with `python -c`: nothing is forked from a parent
that may hold threads, sockets or a database connection (an RQ work horse does), and the
program's main module is never imported again. It reads units sent over its stdin and
answers each with a sealed `LogPart` on its stdout. The parent kills workers it no longer
waits for, so a unit stuck on a hanging file ends with the investigation's deadline.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from agents.evidence.logstats import LogPart
from integrations.logs.capabilities import LogUnit

MAX_WORKERS = 4
_WORKER_CODE = "from agents.evidence.parallel import serve; serve({parent})"
_HEADER = struct.Struct(">Q")
_PARENT_CHECK_S = 0.5
_ROOT = Path(__file__).resolve().parents[2]


class WorkerLost(RuntimeError):
    """The worker process ended before answering (killed, crashed, or could not start)."""


def worker_count() -> int:
    """Worker processes worth starting here: one per usable core, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return min(MAX_WORKERS, cores)


def read_unit(unit: LogUnit, window_start: datetime, window_end: datetime) -> LogPart:
    """One unit read into a part; a failure ends the part early and is recorded on it."""
    part = LogPart(window_start, window_end)
    try:
        for event in unit.events(window_start, window_end):
            part.add(event)
    except Exception as exc:  # noqa: BLE001  (the parent reports it as a degraded source)
        part.error = f"{type(exc).__name__}: {exc}"
    return part.seal()


def serve(parent: int) -> None:
    """A worker's loop: read (unit, window start, window end) tasks until stdin closes or `parent` ends."""
    inbox = sys.stdin.buffer
    # Answers go on a copy of stdout; stdout itself becomes stderr, so that nothing printed
    # by accident, by Python or C code, can corrupt them.
    outbox = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()
    while (task := _receive(inbox)) is not None:
        unit, window_start, window_end = task
        _send(outbox, read_unit(unit, window_start, window_end))


def _exit_with_parent(parent: int) -> None:
    # A parent killed mid-read (a job timeout, an RQ work horse torn down) cannot kill us,
    # and a closed stdin is only seen between units: a unit on an endless file never ends.
    # The parent's pid comes from the parent itself: it may be gone before we get here.
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_S)
    os._exit(1)


class Pool:
    """Worker processes reading units; each unit's part arrives on its future."""

    def __init__(self, units: list[LogUnit], window_start: datetime, window_end: datetime, workers: int) -> None:
        self.futures: list[Future[LogPart]] = [Future() for _ in units]
        self._tasks: queue.SimpleQueue[tuple[LogUnit, Future[LogPart]]] = queue.SimpleQueue()
        # Largest first, so that the last units to finish are small ones and no core idles long at the end.
        for unit, future in sorted(zip(units, self.futures, strict=True), key=lambda task: -task[0].size):
            self._tasks.put((unit, future))
        self._window = (window_start, window_end)
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        for _ in range(min(workers, len(units))):
            try:
                command = [sys.executable, "-c", _WORKER_CODE.format(parent=os.getpid())]
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            except OSError:
                break
            self._processes.append(process)
        self._alive = len(self._processes)
        if not self._processes:
            self._fail_remaining()
        for index, process in enumerate(self._processes):
            threading.Thread(target=self._drive, args=(process,), daemon=True, name=f"log-worker-{index}").start()

    def close(self) -> None:
        """Stop every worker: idle ones exit when their stdin closes, busy ones are killed."""
        for future in self.futures:
            future.cancel()
        for process in self._processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()

    def _drive(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        while True:
            try:
                unit, future = self._tasks.get_nowait()
            except queue.Empty:
                break
            if not future.set_running_or_notify_cancel():
                continue
            try:
                _send(process.stdin, (unit, *self._window))
                part = _receive(process.stdout)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                future.set_exception(WorkerLost(f"log worker {process.pid} stopped: {exc}"))
                self._lost()
                return
            if part is None:
                future.set_exception(WorkerLost(f"log worker {process.pid} exited with {process.wait()}"))
                self._lost()
                return
            future.set_result(part)
        with contextlib.suppress(OSError):
            process.stdin.close()
        with self._lock:
            self._alive -= 1

    def _lost(self) -> None:
        with self._lock:
            self._alive -= 1
            last = self._alive == 0
        if last:
            self._fail_remaining()

    def _fail_remaining(self) -> None:
        while True:
            try:
                _unit, future = self._tasks.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(WorkerLost("no log worker left"))


def _send(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next value on `stream`, or None at its end."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    # Only ever our own parent or our own worker at the other end of the pipe.
    return pickle.loads(data)  # noqa: S301
