"""Block Kit for our messages: the status headline, milestones, the report with its buttons.

Every message is a pure function of stored state (investigation row, report,
Jira link), so a re-render after any change is just a `chat.update`. Slack's
limits are enforced here, once: 50 blocks, 3000 characters per section, 150 per
header; whatever does not fit is cut with a link to the full report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.render import render
from agents.ticketing import TicketButton
from bot.payloads import ButtonValue
from core.models import Investigation, JiraLink, ProgressEvent, Status

Block = dict[str, Any]

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_TEXT = 3000
ACTION_CREATE_JIRA = "ir_create_jira"
# Followed by the tool's name: ir_create_ticket_servicenow.
ACTION_CREATE_TICKET = "ir_create_ticket_"
ACTION_RERUN = "ir_rerun"
ACTION_OPEN_REPORT = "ir_open_report"

_STATUS_EMOJI = {
    Status.queued: ":hourglass_flowing_sand:",
    Status.gathering: ":mag:",
    Status.analysing: ":brain:",
    Status.reporting: ":memo:",
    Status.done: ":white_check_mark:",
    Status.degraded: ":warning:",
    Status.failed: ":x:",
}


def escape(text: str) -> str:
    """Evidence is arbitrary text; Slack treats &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_url(public_url: str, investigation_id: str) -> str:
    return f"{public_url.rstrip('/')}/investigations/{investigation_id}"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER), "emoji": True}}


def _link(url: str | None, label: str) -> str:
    return f"<{url}|{escape(label)}>" if url else escape(label)


def _human(value: str | None) -> str:
    return (value or "unknown").replace("_", " ")


def _when(value: str | None) -> str:
    return (value or "?").replace("T", " ").replace("Z", " UTC")[:23]


# status headline ------------------------------------------------------------------


def status_message(investigation: Investigation, latest: ProgressEvent | None, *, public_url: str) -> tuple[str, list[Block]]:
    status = Status(investigation.status)
    emoji = _STATUS_EMOJI.get(status, ":mag:")
    title = escape(clip(investigation.title or f"Investigation of {investigation.service}", 200))
    headline = f"{emoji} *{escape(investigation.service)}*: {title}"
    if status.finished:
        state = {Status.done: "Report ready", Status.degraded: "Report ready (some sources failed)", Status.failed: "Investigation failed"}[
            status
        ]
        if investigation.category:
            state += f": {_human(investigation.category)} ({(investigation.confidence or 0):.0%} confidence)"
    else:
        state = escape(clip(latest.message, 500)) if latest is not None else "Queued"
    window = f"{investigation.window_start:%Y-%m-%d %H:%M} to {investigation.window_end:%H:%M} UTC"
    url = report_url(public_url, investigation.id)
    blocks = [
        _section(f"{headline}\n{state}"),
        _context(f"`{investigation.id}` · {status.value} · window {window} · <{url}|dashboard>"),
    ]
    return clip(f"{investigation.service}: {state}", MAX_TEXT), blocks


def milestone_text(event: ProgressEvent) -> str:
    return clip(f":small_blue_diamond: {escape(event.message)}", MAX_TEXT)


# report ---------------------------------------------------------------------------


def _suspects(report: dict[str, Any]) -> Block | None:
    suspects = report.get("suspect_commits") or []
    if not suspects:
        return None
    lines = ["*Suspect changes*"]
    for s in suspects[:3]:
        title = (s.get("message") or "").strip().splitlines()[0] if (s.get("message") or "").strip() else ""
        sha = _link(s.get("url"), f"{s.get('sha', '')[:8]}")
        who = f" by {escape(s['author'])}" if s.get("author") else ""
        pull = f" · {_link(s['pr_url'], 'pull request')}" if s.get("pr_url") else ""
        lines.append(
            f"• {sha} {escape(clip(title, 120))}{who}{pull} — score {s.get('score', 0):.2f}\n   _{escape(clip(s.get('reason', ''), 300))}_"
        )
    return _section("\n".join(lines))


def _signatures(report: dict[str, Any]) -> list[Block]:
    signatures = report.get("signatures") or []
    if not signatures:
        return []
    blocks = [_section("*Log signatures*")]
    for sig in signatures[:3]:
        if sig.get("trend") == "untimed":
            counts = f"*{sig.get('count', 0)}x* (no timestamps)"
        else:
            counts = f"*{sig.get('count', 0)}x* ({sig.get('count_before', 0)} before, {sig.get('count_after', 0)} after onset)"
        first = f", first {_when(sig.get('first_seen'))}" if sig.get("first_seen") else ""
        template = clip(sig.get("template", ""), 600).replace("```", "'''")
        blocks.append(_section(f"{counts}{first}\n```{escape(template)}```"))
    return blocks


def _facts(report: dict[str, Any]) -> Block | None:
    """What the platform states comes before the statistics: it is observed, not inferred."""
    failing = [f for f in report.get("facts") or [] if f.get("failing", True)]
    if not failing:
        return None
    lines = ["*Facts* (what the platform and the errors state)"]
    for fact in failing[:4]:
        count = f" ({fact['count']}x)" if fact.get("count", 1) > 1 else ""
        since = f", since {_when(fact['at'])}" if fact.get("at") else ""
        lines.append(
            f"• *{escape(fact.get('reason') or fact.get('kind', ''))}* `{escape(clip(fact.get('subject', ''), 80))}`: "
            f"{escape(clip(fact.get('detail', ''), 240))}{count}{since}"
        )
    return _section("\n".join(lines))


def _metrics(report: dict[str, Any]) -> Block | None:
    shifts = report.get("metrics") or []
    if not shifts:
        return None
    lines = ["*Metric changes*"]
    lines += [
        f"• `{escape(m.get('metric', ''))}` {m.get('before', 0):.4g} → {m.get('after', 0):.4g}"
        + (f" {escape(m['unit'])}" if m.get("unit") else "")
        + f" at {_when(m.get('change_at'))}"
        + (f" · {_link(m['url'], 'open the query')}" if m.get("url") else "")
        for m in shifts[:5]
    ]
    return _section("\n".join(lines))


def _actions(report: dict[str, Any]) -> Block | None:
    actions = report.get("actions") or []
    if not actions:
        return None
    lines = ["*Next actions*"]
    for i, a in enumerate(actions[:6], 1):
        detail = f" — {escape(clip(a.get('detail', ''), 300))}" if a.get("detail") else ""
        lines.append(f"{i}. *{escape(clip(a.get('title', ''), 200))}*{detail}")
    return _section("\n".join(lines))


def _runbooks(report: dict[str, Any]) -> Block | None:
    runbooks = report.get("runbooks") or []
    if not runbooks:
        return None
    return _section("*Runbooks*\n" + "\n".join(f"• {escape(r.get('title', ''))} (`{escape(r.get('path', ''))}`)" for r in runbooks[:5]))


def _similar(report: dict[str, Any]) -> Block | None:
    similar = report.get("similar_incidents") or []
    if not similar:
        return None
    lines = []
    for item in similar[:3]:
        title = clip(item.get("title") or item.get("id", ""), 120)
        when = str(item.get("date") or "")[:10]
        line = f"• {when} {_link(item.get('url'), title)} · {_human(item.get('category'))} · {float(item.get('score', 0)):.2f}"
        if item.get("resolution"):
            line += f"\n    resolved: {escape(clip(item['resolution'], 200))}"
        lines.append(line)
    return _section("*Similar past incidents*\n" + "\n".join(lines))


def _ticket_button(button: TicketButton, value: str, url: str) -> Block:
    if button.key:
        return {
            "type": "button",
            "action_id": f"{ACTION_OPEN_REPORT}_{button.tool}",
            "text": {"type": "plain_text", "text": f"{button.label}: {button.key}"},
            "url": button.url or url,
        }
    return {
        "type": "button",
        "action_id": ACTION_CREATE_TICKET + button.tool,
        "text": {"type": "plain_text", "text": f"Create {button.label} incident"},
        "value": value,
    }


def _buttons(investigation: Investigation, jira: JiraLink | None, url: str, tickets: Sequence[TicketButton] = ()) -> Block:
    value = ButtonValue(investigation_id=investigation.id).encode()
    jira_button: Block
    if jira is not None and jira.key:
        jira_button = {
            "type": "button",
            "action_id": ACTION_OPEN_REPORT + "_jira",
            "text": {"type": "plain_text", "text": f"Jira: {jira.key}"},
            "url": jira.url or url,
        }
    else:
        jira_button = {
            "type": "button",
            "action_id": ACTION_CREATE_JIRA,
            "text": {"type": "plain_text", "text": "Create Jira"},
            "value": value,
            "style": "primary",
        }
    return {
        "type": "actions",
        "block_id": f"report_actions:{investigation.id}",
        "elements": [
            jira_button,
            *(_ticket_button(button, value, url) for button in tickets),
            {"type": "button", "action_id": ACTION_RERUN, "text": {"type": "plain_text", "text": "Re-run"}, "value": value},
            {"type": "button", "action_id": ACTION_OPEN_REPORT, "text": {"type": "plain_text", "text": "Full report"}, "url": url},
        ],
    }


def report_message(
    investigation: Investigation,
    report: dict[str, Any],
    *,
    jira: JiraLink | None,
    public_url: str,
    tickets: Sequence[TicketButton] = (),
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) for the final report thread reply."""
    url = report_url(public_url, investigation.id)
    root = report.get("root_cause") or {}
    header = f"{_human(root.get('category')).capitalize()} · {root.get('confidence', 0):.0%} confidence"
    if report.get("degraded"):
        header = ":warning: " + header
    summary = escape(root.get("summary", ""))
    if root.get("component"):
        summary += f"\nComponent: `{escape(root['component'])}`"
    window = report.get("window") or {}
    facts = [f"*{escape(investigation.service)}*"]
    if window.get("onset"):
        facts.append(f"onset {_when(window['onset'])}")
    if (report.get("alert") or {}).get("url"):
        facts.append(_link(report["alert"]["url"], "alert"))
    facts.append(f"analyst: {report.get('analyst', 'offline')}")
    body: list[Block] = [_header(header), _section(summary), _context(" · ".join(facts))]
    for block in (
        _suspects(report),
        _facts(report),
        *_signatures(report),
        _metrics(report),
        _actions(report),
        _runbooks(report),
        _similar(report),
    ):
        if block is not None:
            body.append(block)
    degraded = report.get("degraded") or []
    if degraded:
        body.append(
            _context(
                "Degraded: "
                + "; ".join(f"{escape(d.get('component', ''))}: {escape(clip(d.get('reason', ''), 200))}" for d in degraded[:10])
            )
        )
    blocks = [*fit(body, url), _buttons(investigation, jira, url, tickets)]
    text = render(report, "slack", report_url=url, thread_url=None)
    return clip(text, MAX_TEXT), blocks


def fit(blocks: list[Block], url: str, *, room_for: int = 1) -> list[Block]:
    """Keep within MAX_BLOCKS (leaving `room_for` blocks for buttons); what is cut is replaced by a link."""
    limit = MAX_BLOCKS - room_for
    clipped = any(len(b.get("text", {}).get("text", "")) >= MAX_SECTION for b in blocks)
    if len(blocks) <= limit and not clipped:
        return blocks
    kept = blocks[: limit - 1] if len(blocks) > limit - 1 else blocks
    return [*kept, _context(f":scissors: Trimmed to fit Slack. <{url}|Read the full report>")]


# small replies --------------------------------------------------------------------


def ticket_created_text(label: str, key: str, url: str | None) -> str:
    return f":ticket: {label} incident {_link(url, key)} created for this investigation."


def jira_created_text(key: str, url: str | None) -> str:
    return f":ticket: Jira ticket {_link(url, key)} created for this investigation."


def failure_text(investigation: Investigation, reason: str, *, public_url: str) -> str:
    return clip(
        f":x: The investigation failed: {escape(reason)}\n"
        f"Press *Re-run* on a report or use `/investigate {investigation.service}` to try again; "
        f"details at {report_url(public_url, investigation.id)}",
        MAX_TEXT,
    )
