"""The `files` log kind: the log contract, then `FileLogSource` and `open_lines` on real files (globs, folders, gzip, huge lines)."""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import SECRET_DIR, Broken, LogRecord, LogSourceContract, MakeLogSource, Options
from integrations.errors import SourceError
from integrations.logs import files
from integrations.logs.file_lines import open_lines
from integrations.logs.files import FileLogSource
from integrations.logs.parsing import MAX_LINE, MAX_RAW

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
ALWAYS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
# An "endless" log file: the records, then a sparse tail no test could read in time.
ENDLESS_BYTES = 1 << 40


def json_line(record: LogRecord) -> str:
    entry = {"level": record.level, "msg": record.message}
    if record.ts is not None:
        entry = {"time": record.ts.isoformat(), **entry}
    return json.dumps(entry) + "\n"


class TestFilesContract(LogSourceContract):
    kind = files.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> Iterator[MakeLogSource]:
        counter = itertools.count()
        sparse: list[Path] = []

        def make(records: Sequence[LogRecord], *, endless: bool = False) -> Options:
            folder = tmp_path / f"logs-{next(counter)}"
            folder.mkdir()
            path = folder / "app.log"
            with path.open("w", encoding="utf-8") as out:
                out.writelines(json_line(record) for record in records)
            if endless:
                with path.open("r+b") as grow:
                    grow.truncate(ENDLESS_BYTES)
                sparse.append(path)
            return {"paths": [f"{folder.name}/*.log"]}

        yield make
        # Sparse, but a terabyte on paper is no file to leave behind for the next `du`.
        for path in sparse:
            path.unlink(missing_ok=True)

    @pytest.fixture(params=["no file matches", "corrupt gzip"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        if request.param == "no file matches":
            pattern = f"{SECRET_DIR}/*.log"
            return Broken({"paths": [pattern]}, target=pattern)
        packed = tmp_path / SECRET_DIR / "app.log.gz"
        packed.parent.mkdir()
        packed.write_bytes(b"\x1f\x8b" + b"\xff" * 64)
        return Broken(
            {"paths": [f"{SECRET_DIR}/app.log.gz"]},
            target=str(packed),
        )


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A service's log folder: a current file, a rotated gzip one and a nested ingress folder."""
    root = tmp_path / "logs"
    (root / "ingress").mkdir(parents=True)
    shutil.copy(FIXTURES / "spring-boot.log", root / "ledger.log")
    with (FIXTURES / "python-logging.log").open("rb") as plain, gzip.open(root / "billing.log.1.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    shutil.copy(FIXTURES / "nginx-access.log", root / "ingress" / "access.log")
    (root / "ingress" / ".keep").write_text("")
    return root


def test_plain_and_gzip_files_read_the_same_lines(logs: Path) -> None:
    plain = list(open_lines(FIXTURES / "python-logging.log"))
    packed = list(open_lines(logs / "billing.log.1.gz"))

    assert packed == plain
    assert plain[0].startswith("2025-03-14 09:41:02,117 INFO") and plain[0].endswith("\n")


def test_gzip_is_recognised_by_content_and_a_cut_short_one_yields_what_it_holds(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(f"2025-06-30 17:22:{i:02d},000 INFO [a] line {i}\n".encode() for i in range(60)) * 50)
    cut = tmp_path / "app.log"
    cut.write_bytes(whole[: len(whole) // 2])

    lines = list(open_lines(cut))

    assert 0 < len(lines) < 3000
    assert lines[0] == "2025-06-30 17:22:00,000 INFO [a] line 0\n"


def test_a_folder_names_every_file_inside_and_globs_are_relative_to_the_base_dir(logs: Path) -> None:
    folder = FileLogSource(["logs"], base_dir=logs.parent)
    globbed = FileLogSource(["logs/*.log", "logs/**/access.log", "logs/ledger.log"], base_dir=logs.parent)

    assert [p.relative_to(logs).as_posix() for p in folder.files()] == ["billing.log.1.gz", "ingress/access.log", "ledger.log"]
    assert [p.name for p in globbed.files()] == ["ledger.log", "access.log"]


def test_the_path_option_is_a_shorthand_for_one_entry_of_paths(logs: Path) -> None:
    options = files.FileLogOptions.model_validate({"path": "logs/ledger.log", "paths": ["logs/*.gz"]})

    source = files.KIND.build(options, logs.parent)

    assert [p.name for p in source.files()] == ["billing.log.1.gz", "ledger.log"]


def test_options_without_any_path_are_refused() -> None:
    with pytest.raises(ValueError, match="give 'paths'"):
        files.FileLogOptions.model_validate({})


def test_events_come_from_every_file_named_by_their_file(logs: Path) -> None:
    events = list(FileLogSource(["logs"], base_dir=logs.parent, name="billing").events(*ALWAYS))

    assert {e.source for e in events} == {"billing.log.1.gz", "ledger.log", "access.log"}
    traced = next(e for e in events if e.source == "billing.log.1.gz" and e.exception)
    assert traced.exception == "billing.render.errors.RenderError: no template for inv_Q7c1"
    assert len(traced.frames) == 4


def test_the_window_keeps_events_inside_it_and_events_without_a_time(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text(
        "booting\n"
        "2025-06-30 17:00:00,000 INFO [a] before\n"
        "2025-06-30 17:30:00,000 ERROR [a] inside\n"
        "2025-06-30 18:00:00,000 INFO [a] at the end\n"
        "2025-06-30 18:00:00,001 INFO [a] after\n"
    )
    start = datetime(2025, 6, 30, 17, 15, tzinfo=UTC)

    events = list(FileLogSource(["app.log"], base_dir=tmp_path).events(start, start + timedelta(minutes=45)))

    assert [e.message for e in events] == ["booting", "inside", "at the end"]


def test_naive_window_bounds_are_read_as_utc(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text('{"level":"info","time":"2025-06-30T17:30:00+02:00","msg":"inside"}\n')

    events = list(FileLogSource(["app.log"], base_dir=tmp_path).events(datetime(2025, 6, 30, 15, 0), datetime(2025, 6, 30, 16, 0)))

    assert [e.message for e in events] == ["inside"]


@pytest.mark.parametrize("pattern", ["missing/*.log", "missing", "logs/*.txt"])
def test_a_path_that_names_no_file_raises_source_error_when_events_is_called(logs: Path, pattern: str) -> None:
    source = FileLogSource([pattern], base_dir=logs.parent)

    with pytest.raises(SourceError) as raised:
        source.events(*ALWAYS)

    assert str(raised.value) == f"log path '{pattern}' matched no files under {logs.parent}"
    assert "\n" not in str(raised.value)


def test_an_unreadable_file_raises_source_error(logs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "ledger.log":
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", refuse)

    with pytest.raises(SourceError, match=r"cannot read log file '.*ledger.log': Permission denied"):
        FileLogSource(["logs"], base_dir=logs.parent).events(*ALWAYS)


def test_a_file_that_claims_gzip_but_is_corrupt_raises_source_error(tmp_path: Path) -> None:
    (tmp_path / "app.log.gz").write_bytes(b"\x1f\x8b" + b"\xff" * 64)

    with pytest.raises(SourceError, match="cannot read log file"):
        list(open_lines(tmp_path / "app.log.gz"))


def test_a_ten_megabyte_line_is_cut_without_ever_being_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    with path.open("wb") as out:
        out.write(b"2025-06-30 17:22:56,096 ERROR [a] " + b"x" * 10_000_000 + b"\n")
        out.write(b"2025-06-30 17:22:57,000 INFO [a] next line\n")

    tracemalloc.start()
    try:
        events = list(FileLogSource(["app.log"], base_dir=tmp_path).events(*ALWAYS))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [e.level for e in events] == ["error", "info"]
    assert len(events[0].raw) == MAX_RAW
    assert events[1].message == "next line"
    assert peak < 4 * MAX_LINE + 1_000_000


def test_invalid_utf8_and_binary_junk_are_decoded_leniently(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"2025-06-30 17:22:56,096 INFO [a] caf\xe9 \xff\xfe\n\x00\x01\x02\x89PNG\r\n\x1a\n")

    lines = list(open_lines(path))
    events = list(FileLogSource(["app.log"], base_dir=tmp_path).events(*ALWAYS))

    assert lines[0] == "2025-06-30 17:22:56,096 INFO [a] caf\ufffd \ufffd\ufffd\n"
    assert events[0].message.startswith("caf\ufffd")


def test_sources_check_counts_the_readable_files(logs: Path) -> None:
    source = FileLogSource(["logs"], base_dir=logs.parent)

    assert files.KIND.check is not None
    assert files.KIND.check(source).startswith("3 readable files, ")
