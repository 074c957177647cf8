"""Deployment files cannot run here (no container engine), so check that they say only true things."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings

REPO = Path(__file__).resolve().parents[1].parent
EXTRA_ENV = {"HOST", "PORT", "WEB_CONCURRENCY", "PYTHONUNBUFFERED"} | {
    "CREWAI_DISABLE_TELEMETRY",
    "CREWAI_DISABLE_TRACKING",
    "CREWAI_TRACING_ENABLED",
    "CREWAI_DISABLE_VERSION_CHECK",
}
KNOWN_ENV = {name.upper() for name in Settings.model_fields} | EXTRA_ENV


def cli_commands() -> set[str]:
    import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.app.registered_commands}
    return {n.replace("_", "-") for n in names} | {g.name for g in app.app.registered_groups if g.name}


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "deploy" / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def containers() -> list[dict[str, Any]]:
    return [c for d in manifests() if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]]


def test_dockerfile_cmd_is_the_procfile_web_command() -> None:
    docker = (REPO / "Dockerfile").read_text()
    cmd = json.loads(re.findall(r"^CMD (\[.*\])$", docker, re.M)[-1])
    procfile = dict(line.split(": ", 1) for line in (REPO / "Procfile").read_text().splitlines() if line)
    assert cmd == shlex.split(procfile["web"])
    assert shlex.split(procfile["worker"])[2] in cli_commands()


def test_dockerfile_copies_only_paths_that_exist_and_runs_as_non_root() -> None:
    docker = (REPO / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+)$", docker, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert re.search(r"^USER \w+", docker, re.M)
    assert "HEALTHCHECK" in docker and "/healthz" in docker


def test_compose_parses_and_runs_known_commands_with_known_env() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "redis", "postgres"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("web", "worker"):
        command = services[name]["command"]
        assert command[:2] == ["python", "app.py"] and command[2] in cli_commands()
        assert set(services[name]["environment"]) <= KNOWN_ENV
    assert services["web"]["ports"] == ["8000:8000"]


def test_kubernetes_manifests_reference_real_commands_ports_probes_and_env() -> None:
    kinds = {d["kind"] for d in manifests()}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "ConfigMap"} <= kinds
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")
    assert set(config["data"]) - {"services.yaml"} <= KNOWN_ENV
    secret = yaml.safe_load((REPO / "deploy" / "kubernetes" / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) <= KNOWN_ENV
    for container in containers():
        assert container["command"][:2] == ["python", "app.py"] and container["command"][2] in cli_commands()
        assert {e["name"] for e in container.get("env", [])} <= KNOWN_ENV
    web = next(c for c in containers() if c["name"] == "web")
    assert web["ports"][0]["containerPort"] == 8000
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_probe_paths_exist_in_the_web_app(app_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from web.app import create_app

    with TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)
        assert client.get("/no-such-probe").status_code == 404


def test_catalog_in_the_configmap_is_valid(tmp_path: Path) -> None:
    from core.catalog import load_catalog

    config = next(d for d in manifests() if d["kind"] == "ConfigMap")
    path = tmp_path / "services.yaml"
    path.write_text(config["data"]["services.yaml"])
    assert load_catalog(path).names() == ["checkout"]
