"""What every code-host kind shares: a read's deadline, the API-call budget, the cached commit model and diff rendering.

A code host answers over HTTP, page by page, and limits how fast it may be asked.
Each kind lists commits with one paginated call and fetches each commit's files
and patches with one more: these helpers keep the second kind of call bounded
(a cap, a budget, in parallel, cached by sha) and turn what the host gave back
into the same `Commit` and unified diff the local git source produces, so that
the suspect ranking reads both alike.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import structlog
from pydantic import BaseModel, Field, TypeAdapter

from integrations.code.base import Commit, FileChange
from integrations.errors import SourceError
from integrations.plugin import SourceOptions

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Commits and their files never change once they have a sha: keep them for a month.
IMMUTABLE_TTL_S: Final = 30 * 24 * 3600
# Branch heads, refs and deployments move: keep them only long enough to serve a Re-run or a storm of alerts.
MOVING_TTL_S: Final = 120
# A ref as a host names it: no option-looking start, no range, no whitespace or git revision syntax.
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+-]{1,250}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# A host's passing failures (a proxy or the host restarting), asked again a couple of times within the deadline.
TRANSIENT: Final = frozenset({502, 503, 504})
TRANSIENT_RETRIES: Final = 2


class Deadline:
    """How long one read (commits, deploys, a diff) may take in all, shared by its calls and retries."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0

    def timeout(self, cap: float) -> float:
        """What one request may wait: its own timeout, never past the read's deadline."""
        return max(0.05, min(cap, self.remaining()))


class CallBudget:
    """The API calls a source may make in its life (one investigation); counted from every thread."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, calls: int = 1) -> bool:
        """True when `calls` more fit in the budget (and counts them); False when the budget is spent."""
        with self._lock:
            if self.used + calls > self.limit:
                return False
            self.used += calls
            return True

    def left(self) -> int:
        with self._lock:
            return max(0, self.limit - self.used)


class HostGate:
    """What every request of a code-host client passes: the read's deadline (per thread), the call budget, rate-limit waits.

    `host` names the host and its address ("GitLab at https://gitlab.example.com") and
    `subject` the project read, so that every error says where it came from.
    """

    def __init__(self, host: str, subject: str, *, max_api_calls: int, deadline_s: float) -> None:
        self.host = host
        self.subject = subject
        self.deadline_s = deadline_s
        self.budget = CallBudget(max_api_calls)
        self._local = threading.local()

    def within(self, deadline: Deadline, call: Callable[[], T]) -> T:
        """`call()` on this thread with `deadline` governing every request it makes."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            return call()
        finally:
            self._local.deadline = previous

    def deadline(self) -> Deadline:
        current: Deadline | None = getattr(self._local, "deadline", None)
        return current or Deadline(self.deadline_s)

    def admit(self) -> Deadline:
        """The deadline one more request runs under; SourceError when it has passed or the budget is spent."""
        deadline = self.deadline()
        if deadline.expired():
            raise SourceError(f"{self.host} did not answer within the source deadline of {deadline.seconds:g}s")
        if not self.budget.take():
            raise SourceError(f"{self.host}: the source for {self.subject} spent its budget of {self.budget.limit} API calls")
        return deadline

    def retry_transient(self, status: int, attempt: int, deadline: Deadline) -> bool:
        """Whether to ask again after a host's passing failure (502/503/504), having waited a short backoff first."""
        pause = 0.5 * 2**attempt
        if status not in TRANSIENT or attempt >= TRANSIENT_RETRIES or pause >= deadline.remaining():
            return False
        log.info("code_host_transient_failure", host=self.host, status=status, wait_s=pause)
        time.sleep(pause)
        return True

    def wait_out(self, wait_s: float | None, status: int, deadline: Deadline) -> None:
        """Sleep the wait a rate-limited host asked for (or a short backoff); SourceError when it ends past the deadline."""
        pause = 1.0 if wait_s is None else max(0.0, wait_s)
        if pause >= deadline.remaining():
            resets = (datetime.now(UTC) + timedelta(seconds=pause)).strftime("%H:%M:%S UTC")
            raise SourceError(
                f"{self.host} is rate-limiting {self.subject} ({status}) until {resets}, past the source deadline of {deadline.seconds:g}s"
            )
        log.info("code_host_rate_limited", host=self.host, subject=self.subject, wait_s=round(pause, 1))
        time.sleep(pause)


class PullRequestInfo(BaseModel):
    """The merged pull (or merge) request that brought a commit in."""

    number: int
    title: str
    url: str | None = None
    author: str = ""
    labels: list[str] = Field(default_factory=list)
    reviewers: list[str] = Field(default_factory=list)


class FileDetail(BaseModel):
    path: str
    additions: int = 0
    deletions: int = 0
    old_path: str | None = None
    status: str = "modified"
    # None: the host gave no patch (a binary file, or one too large for the host to show).
    patch: str | None = None
    # (old, new) blob ids ("" for none), from a host that lists files without patches: the diff is built from them when read.
    blobs: tuple[str, str] | None = None


class CommitDetail(BaseModel):
    """One commit as a host describes it, with files and patches (bounded); immutable by sha, so cached by it."""

    sha: str
    author: str
    committed_at: datetime
    message: str
    parents: list[str] = Field(default_factory=list)
    url: str | None = None
    files: list[FileDetail] = Field(default_factory=list)
    # True when files or patches were cut to the per-commit bounds.
    truncated: bool = False
    pull_request: PullRequestInfo | None = None

    @property
    def title_line(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    def to_commit(self, *, with_files: bool = True) -> Commit:
        # A merge lists no files, as `git log --numstat` shows none for it: the ranking then reads both sources alike.
        files = (
            [FileChange(path=f.path, additions=f.additions, deletions=f.deletions, old_path=f.old_path) for f in self.files]
            if with_files and not self.is_merge
            else []
        )
        commit = Commit(
            sha=self.sha,
            author=self.author,
            committed_at=self.committed_at,
            message=self.message,
            files=files,
            url=self.url,
            is_merge=self.is_merge,
        )
        if self.pull_request is not None:
            commit.pr_url = self.pull_request.url
            commit.pr_title = self.pull_request.title
        return commit


DETAIL: Final = TypeAdapter(CommitDetail)
OPTIONAL_SHA: Final[TypeAdapter[str | None]] = TypeAdapter(str | None)
SHAS: Final = TypeAdapter(list[str])


class HostOptions(SourceOptions):
    """Bounds every code-host kind shares: how long a read may take and how many calls a source may make."""

    deadline_s: float = Field(60.0, gt=0, description="longest one read (commits, a diff, deploys) may take, rate-limit waits included")
    timeout_s: float = Field(20.0, gt=0, description="longest wait for one HTTP request")
    max_api_calls: int = Field(600, ge=1, description="API calls one source (one investigation) may make in all")
    parallel: int = Field(8, ge=1, le=32, description="commits whose files are fetched at the same time")


class CodeHostOptions(HostOptions):
    """What every code-host code kind reads of a branch, and the per-commit bounds."""

    branch: str | None = Field(None, description="branch whose history is read (default: the repository's default branch)")
    max_commits_with_files: int = Field(
        200, ge=0, description="newest commits of a window whose files and patches are fetched (one call each); older ones list no files"
    )
    max_files_per_commit: int = Field(300, ge=1, le=3000, description="files kept of one commit")
    max_patch_bytes: int = Field(200_000, ge=1000, description="patch text kept of one commit")
    max_pull_requests: int = Field(
        30,
        ge=0,
        description="newest commits of a read whose merged pull/merge request is asked for (one more call each, cached); "
        "others link one only when their message names it",
    )


def valid_ref(ref: str) -> bool:
    """Whether `ref` can name one commit on a host: refs come from logs and deploy records, text nobody controls."""
    return bool(_REF.match(ref.strip())) and ref == ref.strip()


def is_full_sha(ref: str) -> bool:
    return bool(_FULL_SHA.match(ref))


def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bound_patches(files: Iterable[FileDetail], max_bytes: int) -> tuple[list[FileDetail], bool]:
    """The files with their patches kept within `max_bytes` in all (later patches dropped); True when any was cut."""
    kept: list[FileDetail] = []
    used = 0
    cut = False
    for detail in files:
        size = len(detail.patch.encode()) if detail.patch else 0
        if detail.patch and used + size > max_bytes:
            room = max(0, max_bytes - used)
            detail = detail.model_copy(update={"patch": _cut(detail.patch, room) if room > 200 else None})
            size = len(detail.patch.encode()) if detail.patch else 0
            cut = True
        used += size
        kept.append(detail)
    return kept, cut


def render_diff(detail: CommitDetail, *, paths: Sequence[str] | None = None, max_bytes: int = 200_000) -> str:
    """The commit's change as `git show --patch` prints it, built from the host's per-file patches."""
    wanted = set(paths) if paths else None
    parts: list[str] = []
    for change in detail.files:
        if wanted is not None and change.path not in wanted and (change.old_path is None or change.old_path not in wanted):
            continue
        old = change.old_path or change.path
        header = [f"diff --git a/{old} b/{change.path}"]
        if change.status == "renamed" and change.old_path:
            header += [f"rename from {change.old_path}", f"rename to {change.path}"]
        if change.status == "added":
            header.append("new file mode 100644")
        elif change.status == "removed":
            header.append("deleted file mode 100644")
        if change.patch:
            minus = "/dev/null" if change.status == "added" else f"a/{old}"
            plus = "/dev/null" if change.status == "removed" else f"b/{change.path}"
            header += [f"--- {minus}", f"+++ {plus}", change.patch.rstrip("\n")]
        elif change.additions or change.deletions:
            header.append(f"Binary files a/{old} and b/{change.path} differ")
        parts.append("\n".join(header) + "\n")
    return _cut("".join(parts), max_bytes)


def _cut(text: str, max_bytes: int) -> str:
    raw = text.encode()
    return text if len(raw) <= max_bytes else raw[:max_bytes].decode("utf-8", "ignore")


def in_parallel(
    items: Sequence[T], work: Callable[[T], R], *, workers: int, deadline: Deadline, what: str
) -> tuple[dict[int, R], list[str]]:
    """`work(item)` for each item on up to `workers` threads until the deadline: results by index, and what failed.

    A SourceError from one item (a commit the host lost) is that item's failure; the
    first one that says the source as a whole is broken (credentials) stops the rest.
    """
    results: dict[int, R] = {}
    problems: list[str] = []
    if not items:
        return results, problems
    # Not a `with` block: work still running at the deadline must not hold the read past it.
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(items))), thread_name_prefix=f"host-{what}")
    futures: dict[Future[R], int] = {pool.submit(work, item): index for index, item in enumerate(items)}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=deadline.remaining(), return_when=FIRST_EXCEPTION)
            if not done:
                problems.append(f"{len(pending)} {what} not fetched within the source deadline of {deadline.seconds:g}s")
                break
            for future in done:
                error = future.exception()
                if error is None:
                    results[futures[future]] = future.result()
                elif isinstance(error, FatalHostError):
                    raise SourceError(str(error)) from None
                elif isinstance(error, SourceError):
                    problems.append(str(error))
                else:
                    raise error
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
    return results, problems


class FatalHostError(SourceError):
    """A failure of the whole source (refused credentials, repository gone), not of one item: stop reading."""
