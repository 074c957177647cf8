"""The "start an investigation" modal: built prefilled (from a message or the Home tab) and read back on submit.

One modal serves both ways in: "Investigate this message" prefills the service it guesses
from the message and the message's time, and keeps the message's thread in
`private_metadata`; the Home tab's button adds a channel picker instead. Every text is
clipped to Slack's Block Kit limits (checked in tests against the same numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.alerts import recognise
from bot.alerts.base import all_texts, unlink
from bot.blocks import clip
from bot.payloads import MessageEvent
from bot.service_mapping import catalog_service_for_alert, service_named_in
from core.catalog import Catalog, parse_duration
from core.settings import Settings

CALLBACK_INVESTIGATE = "ir_investigate_modal"
SHORTCUT_INVESTIGATE_MESSAGE = "ir_investigate_message"
ACTION_HOME_START = "ir_home_start"

# Block Kit limits (api.slack.com/reference/block-kit) the modal and Home tab stay within.
MAX_BLOCKS = 100
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_TITLE = 24
MAX_INPUT = 3000
MAX_METADATA = 3000

SINCE_CHOICES = ("15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d")
Block = dict[str, Any]


class ModalContext(BaseModel):
    """What the modal remembers in `private_metadata`: where the investigation goes."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    origin: Literal["message", "home"]
    channel: str | None = None
    thread_ts: str | None = None

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def decode(cls, raw: str | None) -> ModalContext | None:
        try:
            return cls.model_validate_json(raw or "")
        except ValidationError:
            return None


class ModalRequest(BaseModel):
    """A valid submission."""

    model_config = ConfigDict(frozen=True)
    service: str
    what: str
    at: datetime
    since_s: int | None
    channel: str
    thread_ts: str | None


def _plain(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def _option(value: str) -> dict[str, Any]:
    return {"text": _plain(value, MAX_OPTION_TEXT), "value": value[:150]}


def guess_service(message: MessageEvent, catalog: Catalog, settings: Settings) -> str | None:
    """The catalog service a message is most likely about: an alert's labels, else a service named in its text."""
    recognised = recognise(message, pagerduty_ids=settings.slack_pagerduty_bot_ids)
    if recognised is not None and recognised[1] is not None:
        found = catalog_service_for_alert(catalog, settings, recognised[1])
        if found:
            return found
    return service_named_in(catalog, unlink("\n".join(all_texts(message))))


def message_text(message: MessageEvent) -> str:
    return clip(unlink("\n".join(t for t in all_texts(message) if t.strip())), MAX_INPUT)


def investigate_modal(
    catalog: Catalog, *, context: ModalContext, service: str | None, at: datetime | None, what: str, note: str | None = None
) -> dict[str, Any]:
    names = catalog.names()
    if service and service in names and names.index(service) >= MAX_OPTIONS:
        names = [service, *names]
    options = [_option(n) for n in names[:MAX_OPTIONS]]
    service_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": "service",
        "placeholder": _plain("Choose a service"),
        "options": options,
    }
    if service and service in names[:MAX_OPTIONS]:
        service_select["initial_option"] = _option(service)
    lookback = catalog.defaults.lookback
    since_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": "since",
        "options": [_option(c) for c in SINCE_CHOICES],
        "initial_option": _option(lookback if lookback in SINCE_CHOICES else "1h"),
    }
    picker: dict[str, Any] = {"type": "datetimepicker", "action_id": "at"}
    if at is not None:
        picker["initial_date_time"] = int(at.timestamp())
    blocks: list[Block] = []
    if note:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(note, 2000)}]})
    blocks += [
        {"type": "input", "block_id": "service", "label": _plain("Service"), "element": service_select},
        {"type": "input", "block_id": "at", "label": _plain("Around (shown in your time zone)"), "element": picker, "optional": True},
        {"type": "input", "block_id": "since", "label": _plain("Look back"), "element": since_select},
        {
            "type": "input",
            "block_id": "what",
            "label": _plain("What is wrong"),
            "optional": True,
            "element": {
                "type": "plain_text_input",
                "action_id": "what",
                "multiline": True,
                "max_length": MAX_INPUT,
                **({"initial_value": clip(what, MAX_INPUT)} if what.strip() else {}),
            },
        },
    ]
    if context.origin == "home":
        blocks.append(
            {
                "type": "input",
                "block_id": "channel",
                "label": _plain("Post the report in"),
                "element": {
                    "type": "conversations_select",
                    "action_id": "channel",
                    "default_to_current_conversation": True,
                    "filter": {"include": ["public", "private"], "exclude_bot_users": True},
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": CALLBACK_INVESTIGATE,
        "title": _plain("Investigate", MAX_TITLE),
        "submit": _plain("Start", MAX_TITLE),
        "close": _plain("Cancel", MAX_TITLE),
        "private_metadata": context.encode()[:MAX_METADATA],
        "blocks": blocks[:MAX_BLOCKS],
    }


def _value(values: dict[str, Any], block: str) -> dict[str, Any]:
    found = (values.get(block) or {}).get(block)
    return found if isinstance(found, dict) else {}


def read_submission(view: dict[str, Any], catalog: Catalog, *, now: datetime | None = None) -> ModalRequest | dict[str, str]:
    """The request a submitted modal makes, or Slack's `errors` (block_id -> message) to show beside the fields."""
    values = (view.get("state") or {}).get("values") or {}
    context = ModalContext.decode(view.get("private_metadata"))
    errors: dict[str, str] = {}
    chosen = (_value(values, "service").get("selected_option") or {}).get("value") or ""
    service = catalog.resolve(chosen) if chosen else None
    if service is None:
        errors["service"] = "Choose a service from the catalog."
    raw_at = _value(values, "at").get("selected_date_time")
    now = now or datetime.now(UTC)
    at = datetime.fromtimestamp(int(raw_at), UTC) if isinstance(raw_at, int | str) and str(raw_at).isdigit() else now
    if at > now:
        errors["at"] = "Pick a time that has already happened."
    since = (_value(values, "since").get("selected_option") or {}).get("value")
    since_s = parse_duration(since) if since in SINCE_CHOICES else None
    what = str(_value(values, "what").get("value") or "").strip()
    channel = (
        context.channel if context is not None and context.origin == "message" else _value(values, "channel").get("selected_conversation")
    )
    if context is None:
        errors["service"] = "This form is out of date; open it again."
    elif not channel:
        errors["channel"] = "Choose a channel for the report."
    if errors or service is None or not channel or context is None:
        return errors
    return ModalRequest(service=service, what=what, at=at, since_s=since_s, channel=str(channel), thread_ts=context.thread_ts)
