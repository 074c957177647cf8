"""The `grafana_annotations` deploys kind against a Grafana stand-in's `/api/annotations`: tags, pages, errors, contract."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standin_grafana import GrafanaStandin

from agents.evidence.engine import build_evidence
from agents.offline import write_report
from agents.pipeline import gather
from contracts import SECRET_DIR, Broken, DeployRecord, DeploySourceContract, MakeDeploySource, Options
from core.alert import alert_from_payload
from core.catalog import SourceSpec
from core.timeparse import parse_iso
from integrations.code.deploys_file import DeploysFile
from integrations.code.git import GitChangeSource, import_fast_export
from integrations.errors import SourceError
from integrations.logs.files import FileLogSource
from integrations.metrics import grafana_annotations
from integrations.metrics.csv_file import MetricsCsv
from integrations.metrics.grafana_annotations import GrafanaAnnotationsOptions, GrafanaAnnotationsSource, _check
from integrations.registry import ServiceSources, build_specs
from integrations.roles import CODE, DEPLOYS, LOGS, METRICS

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START, END = T0 - timedelta(hours=1), T0
TOKEN = "glsa_standin0123456789abcdef"


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[GrafanaStandin]:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    server = GrafanaStandin(token=TOKEN).start()
    yield server
    server.stop()


def _source(url: str, **extra: Any) -> GrafanaAnnotationsSource:
    return GrafanaAnnotationsSource(GrafanaAnnotationsOptions.model_validate({"url": url, "token_env": "GRAFANA_TOKEN", **extra}))


def test_deploy_markers_in_the_window_become_deploys_oldest_first(grafana: GrafanaStandin) -> None:
    grafana.annotate(T0 - timedelta(minutes=20), ["deploy", "service:checkout", "version:v1.3.0", "sha:0a1b2c3d4e5f"], login="argocd")
    grafana.annotate(T0 - timedelta(minutes=50), ["deploy"], text="<b>payments v7.0.1</b> rolled out\nby flux", login="flux")
    # Not deploys: another tag, an alert state change, and a marker from before the window.
    grafana.annotate(T0 - timedelta(minutes=30), ["maintenance", "service:checkout"])
    grafana.annotate(T0 - timedelta(minutes=10), ["deploy"], kind="alert")
    grafana.annotate(T0 - timedelta(hours=3), ["deploy", "version:v1.0.0"])

    deploys = _source(grafana.url, service="payments").deploys(START, END)

    assert [(d.at, d.service, d.version, d.actor, d.sha) for d in deploys] == [
        (T0 - timedelta(minutes=50), "payments", "payments v7.0.1 rolled out", "flux", None),
        (T0 - timedelta(minutes=20), "checkout", "v1.3.0", "argocd", "0a1b2c3d4e5f"),
    ]
    request = grafana.requests[-1]
    assert request.path == "/api/annotations" and request.method == "GET"
    assert request.lists["tags"] == ["deploy"] and request.form["type"] == "annotation"
    assert (int(request.form["from"]), int(request.form["to"])) == (int(START.timestamp() * 1000), int(END.timestamp() * 1000))
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_every_tag_must_match_unless_match_any_and_a_dashboard_narrows_them(grafana: GrafanaStandin) -> None:
    grafana.annotate(T0 - timedelta(minutes=40), ["deploy", "env:prod", "version:a"], dashboard_uid="checkout-overview")
    grafana.annotate(T0 - timedelta(minutes=30), ["deploy", "env:staging", "version:b"])
    grafana.annotate(T0 - timedelta(minutes=20), ["release", "version:c"])

    both = _source(grafana.url, tags=["deploy", "env:prod"]).deploys(START, END)
    either = _source(grafana.url, tags=["deploy", "release"], match_any=True).deploys(START, END)
    dashboard = _source(grafana.url, dashboard_uid="checkout-overview").deploys(START, END)

    assert [d.version for d in both] == ["a"]
    assert [d.version for d in either] == ["a", "b", "c"]
    assert [d.version for d in dashboard] == ["a"]
    assert grafana.requests[-1].form["dashboardUID"] == "checkout-overview"


def test_pages_of_newest_first_are_followed_back_to_the_window_start(grafana: GrafanaStandin) -> None:
    # 250 markers, several at the same millisecond where one page ends and the next begins.
    for i in range(250):
        grafana.annotate(START + timedelta(seconds=12 * (i // 3)), ["deploy", f"version:v{i}"])

    deploys = _source(grafana.url).deploys(START, END)

    assert sorted(d.version for d in deploys) == sorted(f"v{i}" for i in range(250))
    assert [d.at for d in deploys] == sorted(d.at for d in deploys)
    assert len([r for r in grafana.requests if r.path == "/api/annotations"]) == 3


def test_max_annotations_keeps_the_newest(grafana: GrafanaStandin) -> None:
    for i in range(30):
        grafana.annotate(START + timedelta(minutes=i), ["deploy", f"version:v{i}"])

    deploys = _source(grafana.url, max_annotations=10).deploys(START, END)

    assert [d.version for d in deploys] == [f"v{i}" for i in range(20, 30)]


def test_rate_limit_and_server_errors_are_retried(grafana: GrafanaStandin) -> None:
    grafana.annotate(T0 - timedelta(minutes=5), ["deploy", "version:v2"])
    grafana.fail(429, headers={"Retry-After": "0"})
    grafana.fail(503)

    assert [d.version for d in _source(grafana.url).deploys(START, END)] == ["v2"]
    assert len(grafana.requests) == 3


def test_retries_stop_at_the_deadline(grafana: GrafanaStandin) -> None:
    grafana.fail(502, times=100)
    with pytest.raises(SourceError, match="502"):
        _source(grafana.url, retries=10, deadline_s=1.0).deploys(START, END)
    assert len(grafana.requests) < 10


def test_a_refused_token_is_a_clear_error_without_the_token(grafana: GrafanaStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_wrong0123456789abcdef")
    with pytest.raises(SourceError) as caught:
        _source(grafana.url).deploys(START, END)
    assert "refused the token (401: Unauthorized)" in str(caught.value)
    assert "glsa_" not in str(caught.value)


def test_check_names_the_latest_marker(grafana: GrafanaStandin) -> None:
    assert "no annotation tagged deploy yet" in _check(_source(grafana.url))
    grafana.annotate(T0, ["deploy"])
    assert "latest annotation tagged deploy at 2026-03-10 12:00 UTC" in _check(_source(grafana.url))


def test_the_catalog_refuses_an_empty_tag_list() -> None:
    spec = SourceSpec.model_validate({"kind": "grafana_annotations", "url": "http://grafana", "tags": []})
    built = build_specs({"deploys": [spec]}, Path("."))
    assert [d.component for d in built.errors] == ["deploys:grafana_annotations"]
    assert built.entries(DEPLOYS) == []


# --- the role contract, over the Grafana stand-in ---------------------------------------------------------------------


class TestGrafanaAnnotationsContract(DeploySourceContract):
    kind = grafana_annotations.KIND

    @pytest.fixture
    def make_source(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeDeploySource]:
        monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
        servers: list[GrafanaStandin] = []

        def make(records: Sequence[DeployRecord]) -> Options:
            server = GrafanaStandin(token=TOKEN).start()
            servers.append(server)
            for record in records:
                server.annotate(record.at, ["deploy", f"service:{record.service}", f"version:{record.version}"], login=record.actor)
            return {"url": server.url, "token_env": "GRAFANA_TOKEN"}

        yield make
        for server in servers:
            server.stop()

    @pytest.fixture(params=["unreachable", "token refused"])
    def broken_source(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broken]:
        monkeypatch.setenv("GRAFANA_TOKEN", "glsa_not_the_right_one_0123456789")
        if request.param == "unreachable":
            url = f"http://127.0.0.1:9/{SECRET_DIR}"
            yield Broken({"url": url, "token_env": "GRAFANA_TOKEN", "retries": 0, "deadline_s": 3}, target=url)
            return
        server = GrafanaStandin(token=TOKEN).start()
        url = f"{server.url}/{SECRET_DIR}"
        yield Broken({"url": url, "token_env": "GRAFANA_TOKEN"}, target=url)
        server.stop()


# --- an investigation that learns its deploys from Grafana markers ----------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "checkout-discount-crash"


def test_an_investigation_blames_the_same_deploy_from_grafana_markers_as_from_the_deploys_file(
    grafana: GrafanaStandin, tmp_path: Path
) -> None:
    # The CD pipeline's deploys, posted as Grafana annotations the way a deploy step posts them.
    for deploy in json.loads((EXAMPLE / "deploys.json").read_text()):
        tags = ["deploy", f"service:{deploy['service']}", f"version:{deploy['version']}"]
        grafana.annotate(parse_iso(deploy["at"]), tags, text=f"Deployed {deploy['version']}", login=deploy["actor"])
    grafana.annotate(parse_iso("2026-03-10T12:00:00Z"), ["maintenance"], text="node pool upgrade")
    alert = alert_from_payload(json.loads((EXAMPLE / "alert.json").read_text()))
    start, end = alert.created_at - timedelta(hours=6), alert.created_at + timedelta(minutes=15)
    repo = import_fast_export(EXAMPLE / "repo.fi", tmp_path)

    def report(deploys: object) -> dict[str, Any]:
        sources = ServiceSources.holding(
            {
                LOGS: [FileLogSource(["logs/*.log"], EXAMPLE)],
                CODE: [GitChangeSource(repo)],
                DEPLOYS: [deploys],
                METRICS: [MetricsCsv(EXAMPLE / "metrics.csv")],
            }
        )
        inputs = gather(alert=alert, service=alert.service, window_start=start, window_end=end, sources=sources)
        assert inputs.degraded == []
        return write_report(build_evidence(inputs), alert).to_json_dict()

    from_markers = report(_source(grafana.url))
    from_file = report(DeploysFile(EXAMPLE / "deploys.json"))

    # Without a deploy record the engine dates the deploy from start-up log lines (13:31:20); the marker says 13:31:00.
    assert from_markers["suspect_commits"][0]["deployed_at"] == "2026-03-10T13:31:00Z"
    assert from_markers["suspect_commits"] == from_file["suspect_commits"]
    assert from_markers["root_cause"] == from_file["root_cause"]
