"""Typed shapes of what Slack sends us: one TypedDict per interaction kind we handle.

Only the keys we read are listed; Slack sends more, and `total=False` says that
any of them may be missing in a real delivery.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, ValidationError


class SlashCommand(TypedDict, total=False):
    command: str
    text: str
    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    team_id: str
    trigger_id: str
    response_url: str


class BotProfile(TypedDict, total=False):
    id: str
    app_id: str
    name: str


class MessageEvent(TypedDict, total=False):
    type: str
    subtype: str
    channel: str
    channel_type: str
    user: str
    bot_id: str
    app_id: str
    bot_profile: BotProfile
    text: str
    ts: str
    thread_ts: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    message: MessageEvent
    previous_message: MessageEvent
    edited: dict[str, Any]


class Authorization(TypedDict, total=False):
    team_id: str
    user_id: str
    is_bot: bool


class EventEnvelope(TypedDict, total=False):
    type: str
    team_id: str
    api_app_id: str
    authorizations: list[Authorization]
    event_id: str
    event_time: int
    event: MessageEvent


class ActionUser(TypedDict, total=False):
    id: str
    username: str


class ActionChannel(TypedDict, total=False):
    id: str
    name: str


class BlockAction(TypedDict, total=False):
    action_id: str
    block_id: str
    value: str
    action_ts: str
    type: str


class BlockActionsPayload(TypedDict, total=False):
    type: str
    user: ActionUser
    channel: ActionChannel
    container: dict[str, Any]
    message: MessageEvent
    actions: list[BlockAction]
    trigger_id: str
    response_url: str


class ButtonValue(BaseModel):
    """What a button carries: the investigation it acts on, never free text."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    investigation_id: str

    def encode(self) -> str:
        return json.dumps({"investigation_id": self.investigation_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | None) -> ButtonValue | None:
        if not raw:
            return None
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            return None


class ShortcutPayload(TypedDict, total=False):
    """A message shortcut (`message_action`): the message it was used on, and a trigger for `views.open`."""

    type: str
    callback_id: str
    trigger_id: str
    user: ActionUser
    channel: ActionChannel
    message: MessageEvent
    message_ts: str
    response_url: str


class ViewState(TypedDict, total=False):
    values: dict[str, dict[str, dict[str, Any]]]


class ViewPayload(TypedDict, total=False):
    id: str
    type: str
    callback_id: str
    private_metadata: str
    state: ViewState
    hash: str


class ViewSubmission(TypedDict, total=False):
    type: str
    user: ActionUser
    view: ViewPayload
    trigger_id: str


class AppHomeOpenedEvent(TypedDict, total=False):
    type: str
    user: str
    channel: str
    tab: str
    event_ts: str
