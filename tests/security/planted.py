"""Planted secrets and the incident inputs that carry them: the bundled checkout example, with every kind of secret
the redaction promises to catch written into its logs (plain, JSON, stack traces), a commit (diff and message) and
the labels of its metrics CSV. `OneService` runs an investigation of one remote source in a real RQ worker and
gathers everything it sent out, for the tests of the sources that are not files.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from pathlib import Path

import pytest
from bot_harness import Worker
from redis import Redis
from smtp_inbox import Inbox
from standin_receiver import Receiver

from agents.flows import open_investigation, window_for
from core.alert import Alert
from core.models import Investigation, Source
from core.runtime import get_store
from core.settings import get_settings, reset_settings
from integrations.catalog import get_catalog
from integrations.code.git import import_fast_export

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "checkout-discount-crash"
ERROR_SIGNATURE = "unsupported operand type(s) for -: 'decimal.Decimal' and 'NoneType'"

SLACK_TOKEN = "xoxb-5550001111-2220003333-PLANTEDslackTOKEN9z"
GITHUB_TOKEN = "ghp_PLANTEDgithubTOKEN0123456789abcdEF"
AWS_KEY = "AKIAPLANTEDAWS12345X"
PASSWORD_KV = "Plant3dPassw0rdKV"
PASSWORD_JSON = "Plant3dJsonPassw0rd"
PEM_BODY = "MIIEplantedPEMbodyQ29uZmlkZW50aWFsS2V5TWF0ZXJpYWw"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nAAAAplantedPEMsecondLine0000\n-----END RSA PRIVATE KEY-----"
DB_PASSWORD = "Plant3dDbPass"
CREDENTIAL_URL = f"postgres://checkout:{DB_PASSWORD}@db.internal:5432/shop"
BEARER = "PlantedBearerTok3n.abcdef0123456789"
OPENAI_KEY = "sk-PLANTEDopenaiKEY0123456789abcd"
EMAIL = "jane.planted@example.com"

# What a leak would look like: a distinctive piece of each secret. Any of these anywhere outbound is a failure.
NEEDLES: dict[str, str] = {
    "slack token": "PLANTEDslackTOKEN9z",
    "github token": "PLANTEDgithubTOKEN",
    "aws key": "AKIAPLANTEDAWS",
    "password=": PASSWORD_KV,
    "json password": PASSWORD_JSON,
    "pem private key": "planted" + "PEMbody",
    "pem second line": "AAAAplantedPEMsecondLine",
    "credential url": DB_PASSWORD,
    "bearer token": "PlantedBearerTok3n",
    "openai key": "PLANTEDopenaiKEY",
    "email": "jane.planted",
}

# The commit that carries secrets touches a file of its own, so a follow-up can ask for exactly its diff.
SECRET_FILE = "config/production.yaml"


def leaks(text: str, needles: Mapping[str, str] = NEEDLES) -> list[str]:
    """The planted secrets `text` gives away (names, not values, so a failure message leaks nothing either)."""
    return [name for name, needle in needles.items() if needle in text]


def leaks_in(where: str, texts: Iterable[str], needles: Mapping[str, str] = NEEDLES) -> list[str]:
    return [f"{where}: {name}" for text in texts for name in leaks(text, needles)]


def _secret_lines(at: str, pod: str) -> list[str]:
    """A crash's log lines with secrets in the error line and inside its stack trace."""
    return [
        f"{at} ERROR [checkout.api] unhandled error in POST /v1/orders db={CREDENTIAL_URL} customer={EMAIL} pod={pod}",
        "Traceback (most recent call last):",
        '  File "/app/checkout/api.py", line 7, in create_order',
        '    order["total"] = pricing.apply_discount(order, request.get("promo")) + pricing.shipping(order)',
        f"    headers = {{'Authorization': 'Bearer {BEARER}', 'X-Api-Key': '{OPENAI_KEY}'}}",
        '  File "/app/checkout/pricing.py", line 15, in apply_discount',
        f'    total = order["subtotal"] - amount  # aws={AWS_KEY} gh={GITHUB_TOKEN} password={PASSWORD_KV}',
        f"TypeError: {ERROR_SIGNATURE}",
    ]


def write_logs(folder: Path) -> Path:
    """The example's logs, each crash carrying secrets, plus a JSON log and plain lines with the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    source = (EXAMPLE / "logs" / "checkout.log").read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    skip = 0
    for line in source:
        if skip:
            skip -= 1
            continue
        if " ERROR [checkout.api] unhandled error in POST /v1/orders" in line:
            at = line[:23]
            pod = line.rsplit("pod=", 1)[-1]
            out.extend(_secret_lines(at, pod))
            # The example's own trace (5 lines) is replaced by the planted one.
            skip = 6
            continue
        out.append(line)
    out += [
        f"2026-03-10 13:33:00,000 WARN [checkout.slack] notifier using token={SLACK_TOKEN} for #payments",
        "2026-03-10 13:33:01,000 ERROR [checkout.tls] could not load signing key:",
        *("    " + pem_line for pem_line in PEM.splitlines()),
    ]
    (folder / "checkout.log").write_text("\n".join(out) + "\n", encoding="utf-8")
    (folder / "ingress-nginx.log").write_text((EXAMPLE / "logs" / "ingress-nginx.log").read_text(encoding="utf-8"), encoding="utf-8")
    json_lines = [
        json.dumps(
            {
                "ts": f"2026-03-10T13:{32 + n // 6:02d}:{(n * 10) % 60:02d}Z",
                "level": "error",
                "logger": "checkout.gateway",
                "msg": "payment gateway refused the charge",
                "db_password": PASSWORD_JSON,
                "dsn": CREDENTIAL_URL,
                "api_key": OPENAI_KEY,
                "contact": EMAIL,
            }
        )
        for n in range(30)
    ]
    (folder / "gateway.log").write_text("\n".join(json_lines) + "\n", encoding="utf-8")
    return folder


def write_metrics(path: Path) -> Path:
    """The example's metrics with secrets in the labels column (k=v pairs and a JSON object)."""
    with (EXAMPLE / "metrics.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["timestamp", "metric", "labels", "value"])
        writer.writeheader()
        for row in rows:
            if row["metric"] == "http_5xx_ratio":
                row["labels"] = f"service=checkout;dsn={CREDENTIAL_URL};password={PASSWORD_KV};owner={EMAIL}"
            elif row["metric"] == "http_request_duration_p99_ms":
                row["labels"] = json.dumps({"service": "checkout", "db_password": PASSWORD_JSON, "aws_key": AWS_KEY, "token": SLACK_TOKEN})
            writer.writerow(row)
    return path


def make_repo(repo: Path) -> Path:
    """The example's git history plus a commit, inside the incident window, with secrets in its diff and message."""
    repo = import_fast_export(EXAMPLE / "repo.fi", repo.parent)
    config = repo / SECRET_FILE
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"\ndatabase_url: {CREDENTIAL_URL}\naws_access_key_id: {AWS_KEY}\npassword={PASSWORD_KV}\n"
        + f'gateway: {{"client_secret": "{PASSWORD_JSON}"}}\nopenai: {OPENAI_KEY}\nauth_header: "Bearer {BEARER}"\n'
        + "signing_key: |\n"
        + "".join(f"  {line}\n" for line in PEM.splitlines()),
        encoding="utf-8",
    )
    when = "2026-03-10T13:25:00+00:00"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Jane Planted",
        "GIT_AUTHOR_EMAIL": EMAIL,
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_NAME": "Jane Planted",
        "GIT_COMMITTER_EMAIL": EMAIL,
        "GIT_COMMITTER_DATE": when,
    }
    subprocess.run(["git", "-C", str(repo), "add", SECRET_FILE], check=True, env=env)
    message = f"Wire the payment gateway for the sale\n\nslack {SLACK_TOKEN} github {GITHUB_TOKEN}; ask {EMAIL}\npassword={PASSWORD_KV}"
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", message], check=True, env=env)
    return repo


def catalog_entry(repo: Path, logs: Path, metrics: Path) -> str:
    return f"""defaults: {{lookback: 2h, after: 15m}}
services:
  checkout:
    aliases: ["Checkout API"]
    pagerduty_service_ids: [PCHECKOUT]
    jira_project: SHOP
    logs: [{{kind: files, paths: ["{logs}/*.log"]}}]
    code: [{{kind: git, path: "{repo}"}}]
    deploys: [{{kind: deploys_file, path: "{EXAMPLE}/deploys.json"}}]
    metrics: [{{kind: metrics_csv, path: "{metrics}"}}]
    runbooks: [{{kind: runbooks_dir, path: "{EXAMPLE}/runbooks"}}]
"""


@dataclass
class OneService:
    """The catalog of one service, `checkout`, whose notifications go to a webhook receiver and a real SMTP inbox."""

    path: Path
    receiver: Receiver
    inbox: Inbox
    smtp_port: int
    queue: str
    monkeypatch: pytest.MonkeyPatch

    def write(self, roles: str) -> None:
        """The catalog with these roles (YAML lines indented for a service), the worker logging JSON as in production."""
        notify = f"""    notify:
      - {{kind: webhook, url: "{self.receiver.url}/ir"}}
      - {{kind: email, to: [oncall@example.com], sender: ir@example.com, host: 127.0.0.1, port: {self.smtp_port}, security: none}}
"""
        self.path.write_text(f"services:\n  checkout:\n{roles.rstrip()}\n{notify}", encoding="utf-8")
        self.monkeypatch.setenv("SERVICES_FILE", str(self.path))
        self.monkeypatch.setenv("LOG_FORMAT", "json")
        reset_settings()

    def investigate(self, title: str, at: datetime) -> Investigation:
        """An investigation of the alert, run to its end by a real RQ worker in this process."""
        alert = Alert(title=title, service="checkout", created_at=at)
        row, _ = open_investigation(alert=alert, service="checkout", source=Source.api, window=window_for(get_catalog(), at=at))
        Worker(Redis.from_url(get_settings().redis_url), self.queue).drain()
        done = get_store().require(row.id)
        assert done.report is not None, done.error
        return done

    def outbound_leaks(self, investigation: Investigation, logs: str, needles: Mapping[str, str] = NEEDLES) -> list[str]:
        """Every planted secret found where the investigation's text went: the stored report, its progress lines, the
        webhook and the e-mail, the report artifacts, the similar-incident index and the worker's log lines (`logs`).
        """
        data = get_settings().data_dir
        return [
            *leaks_in("report", [json.dumps(investigation.report)], needles),
            *leaks_in("progress", [e.message for e in get_store().progress(investigation.id)], needles),
            *leaks_in("webhook", [got.body.decode() for got in self.receiver.received], needles),
            *leaks_in("e-mail", [_mail_text(message) for message in self.inbox.messages], needles),
            *leaks_in("artifacts", [p.read_text(errors="replace") for p in (data / "reports").rglob("*") if p.is_file()], needles),
            *leaks_in("index", [p.read_bytes().decode("latin-1") for p in (data / "qdrant").rglob("*") if p.is_file()], needles),
            *leaks_in("logs", [logs], needles),
        ]


def _mail_text(message: Message) -> str:
    """The headers and every part decoded: quoted-printable breaks long lines, and a secret cut by a soft line break
    would not be found in the raw message.
    """
    texts = [str(value) for value in message.values()]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
    return "\n".join(texts)
