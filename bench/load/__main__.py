"""Load on the web process: signed Slack requests and API reads at a fixed rate (open loop), and a PagerDuty storm.

    python -m bench.load [--rate 100] [--seconds 30] [--web-workers 2] [--storm-alerts 100] [--storm-seconds 60]
    python -m bench.load --rates 100,300,500 --no-storm      # slash commands, events, clicks and API reads at each rate

Open loop: request i is sent at start + i/rate whether or not earlier ones have answered, and its latency counts
from that planned moment, so a slow server cannot hide its queue by slowing the generator down.
Prints the figures and writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import psutil

from bench.load.stack import PD_SECRET, SERVICES, SIGNING_SECRET, Running, running_stack
from bot.blocks import ACTION_OPEN_REPORT
from core.models import Status
from core.store import Store

RESULTS = Path(__file__).resolve().parents[1] / "results" / "load.json"
EXAMPLE_AT = "2026-03-10T13:38:14Z"


@dataclass
class Sample:
    kind: str
    status: int
    latency_ms: float


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    late_start_ms: list[float] = field(default_factory=list)
    # Requests of the first seconds: new connections, pools filling, first-call caches. Reported apart.
    warmup: list[Sample] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _slack_signed(body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command(n: int) -> tuple[str, bytes, dict[str, str]]:
    body = urlencode(
        {
            "command": "/investigate",
            "text": f"svc-{n % SERVICES} 5xx on /pay --at {EXAMPLE_AT}",
            "user_id": "U0LOAD",
            "channel_id": "C0LOAD",
            "team_id": "T0LOAD",
            "trigger_id": f"load.{n}.{time.time_ns()}",
        }
    ).encode()
    return "/slack/events", body, {"Content-Type": "application/x-www-form-urlencoded", **_slack_signed(body)}


def channel_message(n: int) -> tuple[str, bytes, dict[str, str]]:
    envelope = {
        "type": "event_callback",
        "team_id": "T0LOAD",
        "event_id": f"EvLOAD{n}{time.time_ns()}",
        "event_time": int(time.time()),
        "event": {"type": "message", "channel": "C0LOAD", "user": "U0CHATTY", "text": f"chatter {n}", "ts": f"{time.time():.6f}"},
    }
    body = json.dumps(envelope).encode()
    return "/slack/events", body, {"Content-Type": "application/json", **_slack_signed(body)}


def link_click(n: int) -> tuple[str, bytes, dict[str, str]]:
    """A click on the report's "Open report" URL button: Slack sends it and waits for the ack like any interaction."""
    payload = {
        "type": "block_actions",
        "team": {"id": "T0LOAD", "domain": "load"},
        "user": {"id": "U0LOAD", "username": "load", "team_id": "T0LOAD"},
        "api_app_id": "A0LOAD",
        "token": "legacy-verification-token",
        "trigger_id": f"load.click.{n}",
        "channel": {"id": "C0LOAD", "name": "incidents"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0LOAD"},
        "response_url": "https://hooks.slack.com/actions/T0LOAD/1/load",
        "actions": [
            {
                "type": "button",
                "action_id": f"{ACTION_OPEN_REPORT}:{n}",
                "block_id": "report_actions",
                "text": {"type": "plain_text", "text": "Open report"},
                "url": "http://127.0.0.1/investigations/inv_load",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return "/slack/events", body, {"Content-Type": "application/x-www-form-urlencoded", **_slack_signed(body)}


def pagerduty_alert(n: int) -> tuple[str, bytes, dict[str, str]]:
    incident = f"PLOAD{n:05d}"
    data = {
        "id": incident,
        "type": "incident",
        "title": f"HighErrorRate svc-{n % SERVICES}",
        "status": "triggered",
        "urgency": "high",
        "created_at": EXAMPLE_AT,
        "html_url": f"https://acme.pagerduty.com/incidents/{incident}",
        "service": {"id": f"PSVC{n % SERVICES}", "summary": f"svc-{n % SERVICES}"},
    }
    body = json.dumps(
        {
            "event": {
                "id": f"EV{incident}",
                "event_type": "incident.triggered",
                "resource_type": "incident",
                "occurred_at": EXAMPLE_AT,
                "data": data,
            }
        }
    ).encode()
    signature = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return "/webhooks/pagerduty", body, {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={signature}"}


async def open_loop(url: str, *, rate: float, seconds: float, make: Any, api_key: str | None = None, warmup_s: float = 0.0) -> Run:
    """`seconds` of measured load after `warmup_s` of the same load, which is kept apart."""
    run = Run()
    warmup = int(rate * warmup_s)
    total = warmup + int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        start = time.perf_counter() + 0.5

        async def one(i: int) -> None:
            planned = start + i / rate
            await asyncio.sleep(max(0.0, planned - time.perf_counter()))
            if i >= warmup:
                run.late_start_ms.append((time.perf_counter() - planned) * 1000)
            kind, request = make(i)
            try:
                if request is None:
                    async with client.get("/api/v1/investigations?limit=20", headers={"Authorization": f"Bearer {api_key}"}) as response:
                        await response.read()
                else:
                    path, body, headers = request
                    async with client.post(path, data=body, headers=headers) as response:
                        await response.read()
                status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            (run.warmup if i < warmup else run.samples).append(Sample(kind, status, (time.perf_counter() - planned) * 1000))

        await asyncio.gather(*(one(i) for i in range(total)))
    return run


def mixed(i: int) -> tuple[str, Any]:
    """A third each: slash commands, channel messages (events), API list reads."""
    kind = ("slash_command", "event", "api_list")[i % 3]
    if kind == "slash_command":
        return kind, slash_command(i)
    if kind == "event":
        return kind, channel_message(i)
    return kind, None


def front_door_mix(i: int) -> tuple[str, Any]:
    """A quarter each: slash commands, channel messages (events), button clicks (interactive), API list reads."""
    kind = ("slash_command", "event", "interactive", "api_list")[i % 4]
    if kind == "slash_command":
        return kind, slash_command(i)
    if kind == "event":
        return kind, channel_message(i)
    if kind == "interactive":
        return kind, link_click(i)
    return kind, None


def _count_all(store: Store) -> int:
    """Every recorded investigation, page by page (one page would cap the count)."""
    total, cursor = 0, None
    while True:
        rows, cursor = store.list_investigations(limit=500, cursor=cursor)
        total += len(rows)
        if cursor is None:
            return total


def summarise(run: Run, ok: set[int]) -> dict[str, Any]:
    by_kind: dict[str, Any] = {}
    for kind in sorted({s.kind for s in run.samples}):
        mine = [s for s in run.samples if s.kind == kind]
        by_kind[kind] = {
            "requests": len(mine),
            "errors": sum(s.status not in ok for s in mine),
            "p50_ms": round(percentile([s.latency_ms for s in mine], 50), 1),
            "p99_ms": round(percentile([s.latency_ms for s in mine], 99), 1),
            "max_ms": round(max(s.latency_ms for s in mine), 1),
        }
    latencies = [s.latency_ms for s in run.samples]
    return {
        "requests": len(run.samples),
        "errors": sum(s.status not in ok for s in run.samples),
        "statuses": dict(Counter(str(s.status) for s in run.samples)),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "generator_late_p99_ms": round(percentile(run.late_start_ms, 99), 1),
        "by_kind": by_kind,
    }


def _web_cpu_s(stack: Running) -> float:
    """CPU seconds used so far by the web process and its uvicorn workers."""
    try:
        root = psutil.Process(stack.procs[0].pid)
        return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return float("nan")


def ack_scenario(stack: Running, rate: float, seconds: float, make: Any = mixed, warmup_s: float = 0.0) -> dict[str, Any]:
    cpu_before = _web_cpu_s(stack)
    run = asyncio.run(open_loop(stack.url, rate=rate, seconds=seconds, make=make, api_key=stack.api_key, warmup_s=warmup_s))
    web_cpu_s = _web_cpu_s(stack) - cpu_before
    result = summarise(run, {200})
    result |= {"rate_per_s": rate, "seconds": seconds}
    if run.warmup:
        latencies = [s.latency_ms for s in run.warmup]
        result["warmup"] = {
            "seconds": warmup_s,
            "requests": len(run.warmup),
            "errors": sum(s.status != 200 for s in run.warmup),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "max_ms": round(max(latencies), 1),
        }
    # What the front door costs per request, whatever else shares the cores: the figure that decides the top rate.
    sent = len(run.samples) + len(run.warmup)
    result["web_cpu_ms_per_request"] = round(1000 * web_cpu_s / max(sent, 1), 2)
    result["web_cores_used"] = round(web_cpu_s / (seconds + warmup_s), 2)
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result["investigations_recorded"] = _count_all(stack.store)
    result["slash_commands_sent"] = result["by_kind"].get("slash_command", {}).get("requests", 0)
    return result


def storm_scenario(stack: Running, alerts: int, seconds: float) -> dict[str, Any]:
    stack.start_worker()
    stack.start_worker()
    counter = itertools.count()

    def alert(_i: int) -> tuple[str, Any]:
        return "pagerduty_webhook", pagerduty_alert(next(counter))

    run = asyncio.run(open_loop(stack.url, rate=alerts / seconds, seconds=seconds, make=alert))
    result = summarise(run, {201})
    result["acked_under_3s"] = sum(s.latency_ms < 3000 and s.status == 201 for s in run.samples)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows, _ = stack.store.list_investigations(limit=1000)
        if len(rows) >= alerts and all(Status(r.status).finished for r in rows):
            break
        time.sleep(1)
    rows, _ = stack.store.list_investigations(limit=1000)
    leads = [r for r in rows if r.parent_id is None]
    result |= {
        "alerts": alerts,
        "services": SERVICES,
        "investigations_recorded": len(rows),
        "investigations_run": len(leads),
        "linked_to_a_lead": sum(r.parent_id is not None for r in rows),
        "finished": sum(Status(r.status).finished for r in rows),
        "statuses": dict(Counter(r.status for r in rows)),
        "leads_per_service": dict(Counter(r.service for r in leads)),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second in the ack scenario")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the ack scenario (at most 60)")
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn worker processes (`serve --workers`)")
    parser.add_argument("--storm-alerts", type=int, default=100)
    parser.add_argument("--storm-seconds", type=float, default=60.0)
    parser.add_argument("--rates", help="comma-separated rates: run the ack scenario at each (overrides --rate)")
    parser.add_argument("--no-storm", action="store_true", help="skip the PagerDuty storm")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of the same load before the measured part of --rates (reported apart)"
    )
    args = parser.parse_args(argv)
    seconds = min(args.seconds, 60.0)
    command = "python -m bench.load " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.rates or args.no_storm:
        rates = [float(r) for r in (args.rates or str(args.rate)).split(",")]
        return _ack_only(rates, seconds, args.web_workers, command, warmup_s=args.warmup)
    with tempfile.TemporaryDirectory(prefix="ir-load-") as tmp:
        with running_stack(Path(tmp) / "ack", web_workers=args.web_workers) as stack:
            ack = ack_scenario(stack, args.rate, seconds)
        with running_stack(Path(tmp) / "storm", web_workers=args.web_workers) as stack:
            storm = storm_scenario(stack, args.storm_alerts, min(args.storm_seconds, 60.0))
    report = {
        "command": command.strip(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "web_workers": args.web_workers,
        "ack": ack,
        "storm": storm,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"ack @ {args.rate:g}/s for {seconds:g}s, {args.web_workers} web workers: p50 {ack['p50_ms']} ms, p99 {ack['p99_ms']} ms, "
        f"errors {ack['errors']}/{ack['requests']}"
    )
    for kind, figures in ack["by_kind"].items():
        print(f"  {kind:14} p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms  errors {figures['errors']}/{figures['requests']}")
    print(
        f"storm: {storm['alerts']} alerts for {storm['services']} services in {args.storm_seconds:g}s: ack p99 {storm['p99_ms']} ms, "
        f"max {storm['max_ms']} ms, {storm['acked_under_3s']}/{storm['alerts']} acked < 3 s; "
        f"recorded {storm['investigations_recorded']}, "
        f"run {storm['investigations_run']}, linked {storm['linked_to_a_lead']}, finished {storm['finished']}"
    )
    print(f"wrote {RESULTS}")
    return 0


def _ack_only(rates: list[float], seconds: float, web_workers: int, command: str, *, warmup_s: float) -> int:
    by_rate = {}
    with tempfile.TemporaryDirectory(prefix="ir-load-") as tmp:
        for rate in rates:
            with running_stack(Path(tmp) / f"ack-{rate:g}", web_workers=web_workers) as stack:
                ack = by_rate[f"{rate:g}"] = ack_scenario(stack, rate, seconds, make=front_door_mix, warmup_s=warmup_s)
            print(
                f"ack @ {rate:g}/s for {seconds:g}s, {web_workers} web workers: p50 {ack['p50_ms']} ms, p99 {ack['p99_ms']} ms, "
                f"max {ack['max_ms']} ms, errors {ack['errors']}/{ack['requests']}; "
                f"web {ack['web_cpu_ms_per_request']} ms CPU per request, generator late p99 {ack['generator_late_p99_ms']} ms, "
                f"load average {ack['load_average_1m']}"
            )
            if "warmup" in ack:
                first = ack["warmup"]
                print(
                    f"  first {first['seconds']:g}s after start (not in the figures above): p50 {first['p50_ms']} ms, "
                    f"p99 {first['p99_ms']} ms, max {first['max_ms']} ms, errors {first['errors']}/{first['requests']}"
                )
    report = {"command": command.strip(), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "ack_by_rate": by_rate}
    path = RESULTS.with_name("load-rates.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
