"""The `kubectl_dump` kind: the infra contract, then saved kubectl output (describe, events tables, -o yaml/json) read into facts."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from contracts import SECRET_DIR, Broken, EventRecord, InfraSourceContract, MakeInfraSource, Options
from integrations.errors import SourceError
from integrations.infra import kubectl_dump
from integrations.infra.base import InfraFact
from integrations.infra.kubectl_dump import KubectlDump
from integrations.infra.kubectl_text import captured_at, parse_age, parse_time

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kubectl"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def events_yaml(records: Sequence[EventRecord]) -> str:
    """The records as `kubectl get events -o yaml` prints them."""
    items = [
        {
            "apiVersion": "v1",
            "kind": "Event",
            "type": "Warning",
            "reason": r.reason,
            "message": r.message,
            "count": r.count,
            "firstTimestamp": r.at.isoformat().replace("+00:00", "Z"),
            "lastTimestamp": (r.last_at or r.at).isoformat().replace("+00:00", "Z"),
            "involvedObject": {"kind": "Pod", "name": r.pod, "namespace": "shop"},
            "metadata": {"name": f"{r.pod}.{index:04d}", "namespace": "shop"},
        }
        for index, r in enumerate(records)
    ]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})


class TestKubectlDumpContract(InfraSourceContract):
    kind = kubectl_dump.KIND

    @pytest.fixture
    def make_source(self, tmp_path: Path) -> MakeInfraSource:
        counter = itertools.count()

        def make(records: Sequence[EventRecord]) -> Options:
            folder = tmp_path / f"dump-{next(counter)}"
            folder.mkdir()
            (folder / "events.yaml").write_text(events_yaml(records))
            return {"paths": [folder.name]}

        return make

    @pytest.fixture(params=["no file matches", "an empty folder"])
    def broken_source(self, request: pytest.FixtureRequest, tmp_path: Path) -> Broken:
        pattern = f"{SECRET_DIR}/kubectl"
        if request.param == "an empty folder":
            (tmp_path / pattern).mkdir(parents=True)
        return Broken({"paths": [pattern]}, target=pattern)


def facts_of(*names: str, anchor: datetime | None = None) -> list[InfraFact]:
    return KubectlDump([str(FIXTURES / n) for n in names], FIXTURES, anchor=anchor).facts(*EVER)


def one(facts: list[InfraFact], kind: str, reason: str | None = None) -> InfraFact:
    found = [f for f in facts if f.kind == kind and (reason is None or f.reason == reason)]
    assert len(found) == 1, f"{kind}/{reason}: {found}"
    return found[0]


def test_describe_pod_gives_the_last_termination_with_exit_code_restarts_and_limits() -> None:
    facts = facts_of("describe-pod-crashloop.txt")

    terminated = one(facts, "container_error")
    assert terminated.subject == "orders-api-6b8d9c7f5-q2w7x/orders-api"
    assert terminated.exit_code == 134
    assert terminated.count == 5
    assert terminated.at == at("2026-11-03T14:15:40Z")
    assert one(facts, "crash_loop", "CrashLoopBackOff").detail == "waiting: CrashLoopBackOff; restarted 5 times"
    assert one(facts, "resource_limits").attributes["limit_memory"] == "1Gi"


def test_describe_event_ages_count_back_from_the_capture_time_at_the_top_of_the_file() -> None:
    backoff = one(facts_of("describe-pod-crashloop.txt"), "crash_loop", "BackOff")

    # "20s (x27 over 41m)" against "# captured at 2026-11-03T14:26:00Z"
    assert backoff.count == 27
    assert backoff.at == at("2026-11-03T13:45:00Z")
    assert backoff.last_at == at("2026-11-03T14:25:40Z")


def test_without_a_capture_time_relative_ages_stay_unknown(tmp_path: Path) -> None:
    text = (FIXTURES / "describe-pod-crashloop.txt").read_text().split("\n", 1)[1]
    (tmp_path / "describe.txt").write_text(text)

    facts = KubectlDump(["describe.txt"], tmp_path).facts(*EVER)

    assert one(facts, "crash_loop", "BackOff").at is None
    # Absolute times in the same output are still read.
    assert one(facts, "container_error").at == at("2026-11-03T14:15:40Z")


def test_the_captured_at_option_anchors_ages_when_the_file_does_not_say() -> None:
    options = kubectl_dump.KubectlDumpOptions(paths=["get-events.txt"], captured_at="2026-11-09T17:00:00Z")
    facts = kubectl_dump.KIND.build(options, FIXTURES).facts(*EVER)

    pulls = [f for f in facts if f.kind == "image_pull"]
    assert pulls and all(f.last_at is not None and f.last_at <= at("2026-11-09T17:00:00Z") for f in pulls)
    assert min(f.last_at for f in pulls if f.last_at) == at("2026-11-09T16:59:00Z")


def test_an_events_table_gives_when_each_event_was_last_seen_not_when_it_began() -> None:
    facts = facts_of("get-events.txt")

    failed = [f for f in facts if f.kind == "image_pull" and "manifest" not in f.detail and "not found" in f.detail]
    assert failed and all(f.at is None and f.last_at == at("2026-11-09T16:33:00Z") for f in failed)
    assert not [f for f in facts if f.reason in ("Pulling", "Scheduled")]


def test_a_create_container_config_error_and_the_rollout_before_it() -> None:
    facts = facts_of("describe-pod-and-deployment.txt")

    missing = [f for f in facts if f.kind == "config_error"]
    assert any("couldn't find key SMTP_PASSWORD in Secret" in f.detail for f in missing)
    rollout = one(facts, "rollout")
    assert rollout.subject == "deployment/notifications"
    assert rollout.attributes["revision"] == "31"
    assert rollout.attributes["replica_set"] == "notifications-7c4f8d6b59"
    assert rollout.at == at("2026-11-07T07:49:00Z")


def test_describe_node_gives_its_failing_conditions_from_their_transition_time() -> None:
    facts = facts_of("describe-node-notready.txt")

    ready = [f for f in facts if f.kind == "node_condition" and f.detail.startswith("Ready=")]
    assert [f.subject for f in ready] == ["node/ip-10-0-3-17.eu-west-1.compute.internal"]
    assert ready[0].detail == "Ready=Unknown: Kubelet stopped posting node status."
    assert ready[0].at == at("2026-11-14T05:13:50Z")
    # A pressure condition that is Unknown, not True, is not a fact of pressure.
    assert not [f for f in facts if f.detail.startswith("MemoryPressure")]


def test_pods_and_events_as_json_including_the_events_k8s_io_shape() -> None:
    facts = facts_of("get-pods-and-events.json")

    oom = one(facts, "oom_killed")
    assert (oom.subject, oom.exit_code, oom.count, oom.at) == ("ledger-55d8b7c9f6-v9p4l/ledger", 137, 3, at("2026-11-12T00:06:55Z"))
    probe = one(facts, "probe_failed")
    assert (probe.at, probe.last_at, probe.count) == (at("2026-11-12T00:01:30Z"), at("2026-11-12T00:06:40Z"), 9)
    backoff = one(facts, "crash_loop", "BackOff")
    assert (backoff.at, backoff.last_at, backoff.count) == (at("2026-11-12T00:07:05.118402Z"), at("2026-11-12T00:09:12Z"), 4)
    assert one(facts, "resource_limits").attributes == {"limit_cpu": "1", "limit_memory": "768Mi"}


def test_a_folder_reads_every_file_and_the_window_keeps_facts_without_a_time(tmp_path: Path) -> None:
    for name in ("describe-pod-oomkilled.txt", "describe-node-notready.txt"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    source = KubectlDump([str(tmp_path)], Path("/"))

    facts = source.facts(at("2026-11-21T09:00:00Z"), at("2026-11-21T10:00:00Z"))

    assert {f.kind for f in facts} >= {"oom_killed", "resource_limits"}
    assert all(f.at is None or at("2026-11-21T09:00:00Z") <= f.at <= at("2026-11-21T10:00:00Z") for f in facts)
    assert not [f for f in facts if f.subject.startswith("node/") and f.at is not None]


def test_text_that_is_not_kubectl_output_gives_no_facts(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Name: nothing here\nwe restarted the pods at 03:10 and it got better\n")

    assert KubectlDump(["notes.txt"], tmp_path).facts(*EVER) == []


def test_a_path_holding_only_folders_raises_a_source_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "dump.txt").mkdir()
    (tmp_path / "dump.txt" / "inner").mkdir()

    with pytest.raises(SourceError, match="matched no files"):
        KubectlDump(["dump.txt"], tmp_path).facts(*EVER)


def test_a_captured_at_option_that_is_not_a_time_is_refused() -> None:
    with pytest.raises(ValueError, match="not a time"):
        kubectl_dump.KubectlDumpOptions(paths=["x"], captured_at="yesterday evening")


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45), ("3m12s", 192), ("12m", 720), ("2d4h", 187200), ("<unknown>", None), ("3 minutes", None)]
)
def test_kubectl_ages(text: str, seconds: int | None) -> None:
    age = parse_age(text)
    assert (age.total_seconds() if age is not None else None) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 06 Dec 2026 03:02:41 +0000", "2026-12-06T03:02:41+00:00"),
        ("2026-12-06T03:02:41Z", "2026-12-06T03:02:41+00:00"),
        ("Sun Dec  6 03:02:41 UTC 2026", "2026-12-06T03:02:41+00:00"),
        ("Thu, 01 Jan 1970 00:00:00 +0100", "1969-12-31T23:00:00+00:00"),
        ("<unset>", None),
    ],
)
def test_kubectl_times_are_utc(text: str, expected: str | None) -> None:
    moment = parse_time(text)
    assert (moment.isoformat() if moment else None) == expected


def test_the_capture_time_is_read_from_a_comment_or_date_output_near_the_top() -> None:
    assert captured_at("# captured at 2026-11-03T14:26:00Z\nName: x\n") == at("2026-11-03T14:26:00Z")
    assert captured_at("$ date\nTue Nov  3 14:26:00 UTC 2026\n$ kubectl describe pod x\n") == at("2026-11-03T14:26:00Z")
    assert captured_at("Name: x\nStart Time: Tue, 03 Nov 2026 14:26:00 +0000\n") is None
    assert captured_at("Name: x\n" * 20 + "# captured at 2026-11-03T14:26:00Z\n") is None
