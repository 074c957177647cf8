"""A complete, realistic report: renders every template branch at start-up, and fills the docs and tests."""

from __future__ import annotations

from agents.report import Report

SAMPLE_REPORT = Report.model_validate(
    {
        "schema_version": "1",
        "investigation_id": "inv_000000000000",
        "alert": {"title": "checkout: p99 latency above 2 s", "service": "checkout", "urgency": "high", "source": "api"},
        "window": {"start": "2024-05-14T13:00:00Z", "end": "2024-05-14T14:10:00Z", "onset": "2024-05-14T13:42:10Z"},
        "root_cause": {
            "category": "bad_deploy",
            "summary": "Deploy of a1b2c3d lowered the payment client's timeout to 200 ms; "
            "calls to payments now time out under normal load.",
            "component": "checkout",
            "confidence": 0.82,
        },
        "suspect_commits": [
            {
                "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
                "score": 0.86,
                "reason": "deployed 3 min before onset; touches payments/client.py, named by the new stack frames; "
                "changes key payment.timeout_ms",
                "author": "dana",
                "message": "Tighten payment client timeout\n\nLonger body.",
                "files": ["payments/client.py", "config/checkout.yaml"],
                "committed_at": "2024-05-14T13:20:00Z",
                "deployed_at": "2024-05-14T13:39:00Z",
                "url": "https://git.example.com/shop/checkout/commit/a1b2c3d",
            }
        ],
        "signatures": [
            {
                "template": "ERROR payment call failed: TimeoutError after <*> ms (order=<*>)",
                "count": 412,
                "count_before": 0,
                "count_after": 412,
                "first_seen": "2024-05-14T13:42:10Z",
                "level": "ERROR",
                "source": "checkout/app.log",
                "frames": ["payments/client.py:88 in charge"],
            }
        ],
        "metrics": [
            {"metric": "http_p99_latency_ms", "change_at": "2024-05-14T13:42:00Z", "before": 180.0, "after": 2300.0},
            {
                "metric": "error_rate",
                "change_at": "2024-05-14T13:42:00Z",
                "before": 0.002,
                "after": 0.19,
                "series": [0.002, 0.003, 0.002, 0.002, 0.15, 0.19, 0.18, 0.2],
            },
        ],
        "timeline": [
            {"at": "2024-05-14T13:39:00Z", "event": "deploy of a1b2c3d to production", "source": "deploys"},
            {"at": "2024-05-14T13:42:10Z", "event": "first payment timeout", "source": "logs"},
        ],
        "actions": [
            {
                "title": "Roll back a1b2c3d",
                "detail": "or raise payment.timeout_ms back to 2000",
                "kind": "mitigate",
                "runbook": "checkout.md",
            },
            {"title": "Add a latency test for the payment client", "kind": "prevent"},
        ],
        "runbooks": [{"title": "Checkout latency", "path": "runbooks/checkout.md", "score": 0.7}],
        "similar_incidents": [
            {"id": "INC-101", "title": "checkout timeouts after config push", "score": 0.6, "root_cause": "timeout too low"}
        ],
        "degraded": [{"component": "metrics", "reason": "the metrics source answered slowly; one series is missing"}],
        "analyst": "offline",
        "usage": {"llm_calls": 0, "input_tokens": 0, "output_tokens": 0},
        "timings": {"total_s": 4.2},
    }
)
