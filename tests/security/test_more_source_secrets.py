"""Planted secrets read from the other remote sources reach nothing outbound: a token in a CloudWatch Logs message,
keys in a commit's diff served by the GitHub API, credentials in a Kubernetes container's environment (through the
API, and through a saved `kubectl describe`).

Each case runs an investigation in a real RQ worker from a catalog whose source is a stand-in (moto in server mode
for CloudWatch), checks that the source was read and its secrets were in the evidence, then that none of them is
in the report, the notifications (webhook, e-mail), the artifacts, the incident index or the worker's log lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from planted import (
    AWS_KEY,
    BEARER,
    CREDENTIAL_URL,
    EMAIL,
    EXAMPLE,
    GITHUB_TOKEN,
    NEEDLES,
    OPENAI_KEY,
    PASSWORD_JSON,
    PASSWORD_KV,
    SECRET_FILE,
    SLACK_TOKEN,
    OneService,
    make_repo,
)
from standin_aws import MotoServer, seed_events, use_loopback_credentials
from standin_github import GitHubStandin
from standin_kubernetes import KubernetesStandin, LogLine, container_status, event, node, pod, replicaset

AT = datetime(2026, 3, 10, 13, 38, 14, tzinfo=UTC)

# Secrets of the shapes these sources hold, checked for beside the planted ones.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/PLANTEDawsSECRET0"
SESSION_TOKEN = "FwoGZXIvYXdzEPLANTEDsessionTOKEN0123456789"
PG_PASSWORD = "Plant3dPgEnvPass"
NEEDLES_HERE: dict[str, str] = {
    **NEEDLES,
    "aws secret access key": "PLANTEDawsSECRET",
    "aws session token": "PLANTEDsessionTOKEN",
    "PGPASSWORD": PG_PASSWORD,
}


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- CloudWatch Logs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_loopback_credentials(monkeypatch, tmp_path, "us-east-1")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_token_in_a_cloudwatch_message_reaches_nothing_outbound(
    one_service: OneService, moto: MotoServer, aws_environment: None, capfd: pytest.CaptureFixture[str]
) -> None:
    group = f"/ecs/checkout-{uuid.uuid4().hex[:8]}"
    events: list[tuple[int, str]] = []
    for i in range(40):
        at = AT - timedelta(minutes=6) + timedelta(seconds=5 * i)
        secrets = f"token={SLACK_TOKEN} auth=Bearer {BEARER} dsn={CREDENTIAL_URL}" if i % 2 else f"key={OPENAI_KEY} gh={GITHUB_TOKEN}"
        events.append((_ms(at), f"{_stamp(at)} ERROR [checkout.pay] charge failed: upstream said 401 {secrets}"))
    # A Lambda or task logging the STS answer it got: AWS's own camelCase names for the credentials.
    credentials = {"AccessKeyId": AWS_KEY, "SecretAccessKey": AWS_SECRET, "SessionToken": SESSION_TOKEN}
    for i in range(30):
        at = AT - timedelta(minutes=5) + timedelta(seconds=7 * i)
        message = {
            "level": "error",
            "msg": "assume role for the payment gateway failed",
            "db_password": PASSWORD_JSON,
            "password": PASSWORD_KV,
            "credentials": credentials,
            "contact": EMAIL,
        }
        events.append((_ms(at), json.dumps(message)))
    for i in range(60):
        at = AT - timedelta(minutes=50) + timedelta(seconds=30 * i)
        events.append((_ms(at), f"{_stamp(at)} INFO [checkout.http] GET /cart status=200"))
    seed_events(group, f"ecs/checkout/{uuid.uuid4().hex}", sorted(events))
    one_service.write(f'    logs: [{{kind: cloudwatch, endpoint_url: "{moto.url}", region: us-east-1, log_group: "{group}"}}]\n')

    done = one_service.investigate("checkout 401s on /pay", AT)

    assert done.report is not None
    [read] = done.report["log_reads"]
    # Every event was read, and the lines with secrets are what the signatures show, masked.
    assert (read["source"], read["events"], read["failed"]) == ("cloudwatch", 130, None)
    samples = {s["template"]: s["sample"] for s in done.report["signatures"]}
    sts = samples["assume role for the payment gateway failed"]
    assert '"SecretAccessKey": "[REDACTED]"' in sts and '"SessionToken": "[REDACTED]"' in sts
    assert any("charge failed" in t and "token=[REDACTED]" in s for t, s in samples.items())
    found = one_service.outbound_leaks(done, capfd.readouterr().err, NEEDLES_HERE)
    assert len(one_service.receiver.received) == 1 and len(one_service.inbox.messages) == 1
    assert found == [], found


# --- GitHub ---------------------------------------------------------------------------------------------------------


def _commit(repo: Path, files: dict[str, str], message: str, when: datetime) -> str:
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    stamp = when.isoformat()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Jane Planted",
        "GIT_AUTHOR_EMAIL": EMAIL,
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": "Jane Planted",
        "GIT_COMMITTER_EMAIL": EMAIL,
        "GIT_COMMITTER_DATE": stamp,
    }
    subprocess.run(["git", "-C", str(repo), "add", *files], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def test_keys_in_a_commit_diff_served_by_github_reach_nothing_outbound(
    one_service: OneService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # The example's history with the planted commit (secrets in config/production.yaml and in its message), then
    # a commit adding an env file with an AWS secret key, a GitHub token and libpq's password.
    repo = make_repo(tmp_path / "repo")
    planted = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    env_file = f"AWS_ACCESS_KEY_ID={AWS_KEY}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\nGITHUB_TOKEN={GITHUB_TOKEN}\nPGPASSWORD={PG_PASSWORD}\n"
    keys = _commit(repo, {".env.production": env_file}, "Give the gateway its production credentials", AT - timedelta(minutes=11))
    monkeypatch.setenv("IR_TEST_GITHUB_TOKEN", "ghp-standin-token")
    github = GitHubStandin(repo=repo, full_name=f"acme/checkout-{uuid.uuid4().hex[:8]}")
    # Whoever revokes a leaked token tends to name it.
    github.add_pull(keys, 231, f"Revoke {GITHUB_TOKEN} and use {SLACK_TOKEN} instead")
    github.start()
    try:
        one_service.write(
            f"""    logs: [{{kind: files, paths: ["{EXAMPLE}/logs/*.log"]}}]
    code: [{{kind: github, repository: "{github.full_name}", base_url: "{github.url}", token_env: IR_TEST_GITHUB_TOKEN}}]
    deploys: [{{kind: deploys_file, path: "{EXAMPLE}/deploys.json"}}]
"""
        )
        done = one_service.investigate("[FIRING:1] HighErrorRate checkout (prod)", AT)
    finally:
        github.stop()

    assert done.report is not None
    # Both commits were read with their diffs (files and patches come from the commit's own call) and ranked.
    suspects = {s["sha"]: s for s in done.report["suspect_commits"]}
    assert suspects[planted]["files"] == [SECRET_FILE] and suspects[keys]["files"] == [".env.production"]
    assert github.api_calls(f"/commits/{planted}") and github.api_calls(f"/commits/{keys}")
    assert suspects[keys]["url"].startswith(github.root) and suspects[keys]["pr_title"] is not None
    assert "[REDACTED]" in suspects[planted]["message"] and "[REDACTED]" in suspects[keys]["pr_title"]
    found = one_service.outbound_leaks(done, capfd.readouterr().err, NEEDLES_HERE)
    assert len(one_service.receiver.received) == 1 and len(one_service.inbox.messages) == 1
    assert found == [], found


# --- Kubernetes -----------------------------------------------------------------------------------------------------

LABELS = {"app": "checkout"}
OWNER = "checkout-7d9f8c6b5"
CRASHED = f"{OWNER}-x2kqz"
# An entrypoint traced with `set -x` prints the environment it exports; with FallbackToLogsOnError the last lines
# of the log become the container's termination message.
CRASH = "\n".join(
    [
        f"+ export PGPASSWORD={PG_PASSWORD}",
        f"+ exec /app/server --dsn {CREDENTIAL_URL}",
        "FATAL: password authentication failed for user checkout",
    ]
)


def _app(revision: int) -> dict[str, Any]:
    """A revision's container: credentials as literal env values and in its arguments."""
    return {
        "name": "app",
        "image": f"registry.example.com/shop/checkout:v{revision}",
        "args": ["--dsn", CREDENTIAL_URL],
        "env": [
            {"name": "DATABASE_URL", "value": CREDENTIAL_URL},
            {"name": "PGPASSWORD", "value": PG_PASSWORD},
            {"name": "DB_PASSWORD", "value": PASSWORD_KV},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": f"{AWS_SECRET}{revision}"},
            {"name": "POOL_SIZE", "value": str(revision * 4)},
        ],
    }


@pytest.fixture
def cluster() -> Iterator[KubernetesStandin]:
    """A crash-looping pod of a revision whose environment changed, its events, node and previous log."""
    server = KubernetesStandin()
    last_exit = {"reason": "Error", "exitCode": 2, "startedAt": AT - timedelta(minutes=3), "finishedAt": AT - timedelta(minutes=2)}
    status = container_status(
        "app",
        "registry.example.com/shop/checkout:v7",
        restarts=6,
        waiting=("CrashLoopBackOff", f"back-off 2m40s restarting failed container=app pod={CRASHED}_shop"),
        last_terminated={**last_exit, "message": CRASH},
    )
    server.pods.append(pod(CRASHED, labels=LABELS, created=AT - timedelta(minutes=9), owner=OWNER, containers=[_app(7)], statuses=[status]))
    server.nodes["node-a"] = node("node-a", [("Ready", "True", "KubeletReady", "kubelet is posting ready status", AT - timedelta(days=3))])
    server.events.append(
        event(
            "BackOff",
            f"Back-off restarting failed container app in pod {CRASHED}_shop",
            pod_name=CRASHED,
            first=AT - timedelta(minutes=8),
            last=AT - timedelta(minutes=1),
            count=14,
            container="app",
        )
    )
    server.replicasets += [
        replicaset("checkout", revision=6, images=[], created=AT - timedelta(days=2), labels=LABELS, containers=[_app(6)]),
        replicaset("checkout", revision=7, images=[], created=AT - timedelta(minutes=10), labels=LABELS, containers=[_app(7)]),
    ]
    server.add_log(CRASHED, "app", [LogLine(AT - timedelta(minutes=2), line) for line in CRASH.splitlines()], previous=True)
    server.start()
    yield server
    server.stop()


def test_credentials_in_a_kubernetes_env_reach_nothing_outbound(
    one_service: OneService, cluster: KubernetesStandin, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cluster.kubeconfig(tmp_path / "kube" / "config")
    target = '{kind: kubernetes, namespace: shop, selector: "app=checkout", kubeconfig: kube/config}'
    one_service.write(f"    infra: [{target}]\n    logs: [{target}]\n")

    done = one_service.investigate("checkout pods crash looping", AT)

    assert done.report is not None
    facts = {f["kind"]: f["detail"] for f in done.report["facts"] if f["source"] == "kubernetes"}
    # The pod, its revisions and its log were read: the termination message is shown masked, the rollout names
    # what changed in the environment without its values.
    assert "PGPASSWORD=[REDACTED]" in facts["container_error"] and "postgres://checkout:[REDACTED]@" in facts["container_error"]
    assert "env app: AWS_SECRET_ACCESS_KEY changed, POOL_SIZE changed" in facts["rollout"]
    [read] = done.report["log_reads"]
    assert (read["source"], read["events"]) == ("kubernetes", 3)
    assert any("PGPASSWORD=[REDACTED]" in s["sample"] for s in done.report["signatures"])
    found = one_service.outbound_leaks(done, capfd.readouterr().err, NEEDLES_HERE)
    assert len(one_service.receiver.received) == 1 and len(one_service.inbox.messages) == 1
    assert found == [], found


def _describe() -> str:
    """`kubectl describe pod` of the crash-looping pod: its environment's values as kubectl prints them."""
    message = "\n                    ".join(CRASH.splitlines())
    return f"""# captured at 2026-03-10T13:41:00Z
Name:             {CRASHED}
Namespace:        shop
Priority:         0
Service Account:  default
Node:             ip-10-8-1-20.eu-west-1.compute.internal/10.8.1.20
Start Time:       Tue, 10 Mar 2026 13:29:02 +0000
Labels:           app=checkout
Status:           Running
Controlled By:  ReplicaSet/{OWNER}
Containers:
  app:
    Image:          registry.example.com/shop/checkout:v7
    Args:
      --dsn
      {CREDENTIAL_URL}
    State:          Waiting
      Reason:       CrashLoopBackOff
    Last State:     Terminated
      Reason:       Error
      Message:      {message}
      Exit Code:    2
      Started:      Tue, 10 Mar 2026 13:35:14 +0000
      Finished:     Tue, 10 Mar 2026 13:36:14 +0000
    Ready:          False
    Restart Count:  6
    Environment:
      DATABASE_URL:           {CREDENTIAL_URL}
      PGPASSWORD:             {PG_PASSWORD}
      DB_PASSWORD:            {PASSWORD_KV}
      AWS_SECRET_ACCESS_KEY:  {AWS_SECRET}
      GATEWAY_TOKEN:          <set to the key 'token' in secret 'gateway'>  Optional: false
    Mounts:         <none>
Conditions:
  Type              Status
  Ready             False
Events:
  Type     Reason   Age               From     Message
  ----     ------   ----              ----     -------
  Warning  BackOff  2m (x14 over 9m)  kubelet  Back-off restarting failed container app in pod {CRASHED}_shop
"""


def test_credentials_in_a_kubectl_describe_environment_reach_nothing_outbound(
    one_service: OneService, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dump = tmp_path / "kubectl"
    dump.mkdir()
    (dump / "describe.txt").write_text(_describe(), encoding="utf-8")
    one_service.write(
        f"""    infra: [{{kind: kubectl_dump, paths: ["{dump}"]}}]
    logs: [{{kind: files, paths: ["{EXAMPLE}/logs/*.log"]}}]
"""
    )

    done = one_service.investigate("checkout pods crash looping", AT)

    assert done.report is not None
    facts = [f for f in done.report["facts"] if f["source"] == "kubectl_dump:describe.txt"]
    # The describe output was read: the last termination, with its message masked, is a fact the summary names.
    [error] = [f for f in facts if f["kind"] == "container_error"]
    assert "PGPASSWORD=[REDACTED]" in error["detail"] and error["exit_code"] == 2
    assert any(f["kind"] == "crash_loop" and f["count"] == 14 for f in facts)
    assert "PGPASSWORD=[REDACTED]" in done.report["root_cause"]["summary"]
    found = one_service.outbound_leaks(done, capfd.readouterr().err, NEEDLES_HERE)
    assert len(one_service.receiver.received) == 1 and len(one_service.inbox.messages) == 1
    assert found == [], found
