"""Block Kit limits as Slack enforces them (api.slack.com/reference/block-kit), for the stand-in and for tests.

`problems(view)` lists every limit a modal or Home view breaks, in Slack's
`[ERROR] ... [json-pointer:/blocks/0/...]` wording; empty means Slack would accept it.
"""

from __future__ import annotations

from typing import Any

LIMITS = {
    "view_blocks": 100,
    "title": 24,
    "submit": 24,
    "close": 24,
    "private_metadata": 3000,
    "callback_id": 255,
    "block_id": 255,
    "action_id": 255,
    "section_text": 3000,
    "section_fields": 10,
    "field_text": 2000,
    "header_text": 150,
    "context_elements": 10,
    "actions_elements": 25,
    "input_label": 2000,
    "button_text": 75,
    "button_value": 2000,
    "options": 100,
    "option_text": 75,
    "option_value": 150,
    "input_max_length": 3000,
}
INPUT_ELEMENTS = {
    "plain_text_input",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "number_input",
}


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _check_element(element: dict[str, Any], where: str, out: list[str]) -> None:
    kind = element.get("type")
    if len(str(element.get("action_id", ""))) > LIMITS["action_id"]:
        out.append(f"action_id too long [{where}/action_id]")
    if kind == "button":
        if not 0 < len(_text(element.get("text"))) <= LIMITS["button_text"]:
            out.append(f"button text must be 1-75 characters [{where}/text]")
        if len(str(element.get("value", ""))) > LIMITS["button_value"]:
            out.append(f"button value too long [{where}/value]")
    options = element.get("options")
    if options is not None:
        if not 0 < len(options) <= LIMITS["options"]:
            out.append(f"options must number 1-100 [{where}/options]")
        for i, option in enumerate(options):
            if len(_text(option.get("text"))) > LIMITS["option_text"]:
                out.append(f"option text too long [{where}/options/{i}]")
            if len(str(option.get("value", ""))) > LIMITS["option_value"]:
                out.append(f"option value too long [{where}/options/{i}]")
        initial = element.get("initial_option")
        if initial is not None and initial not in options:
            out.append(f"initial_option must be one of the options [{where}/initial_option]")
    if kind == "plain_text_input":
        limit = int(element.get("max_length", LIMITS["input_max_length"]))
        if limit > LIMITS["input_max_length"] or len(str(element.get("initial_value", ""))) > limit:
            out.append(f"initial_value longer than max_length [{where}/initial_value]")
    if kind == "datetimepicker" and "initial_date_time" in element and not isinstance(element["initial_date_time"], int):
        out.append(f"initial_date_time must be a UNIX timestamp [{where}/initial_date_time]")


def problems(view: dict[str, Any]) -> list[str]:
    out: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        out.append("view type must be modal or home [/type]")
    blocks = view.get("blocks") or []
    if len(blocks) > LIMITS["view_blocks"]:
        out.append(f"no more than 100 items allowed [/blocks] (got {len(blocks)})")
    if kind == "modal":
        if not 0 < len(_text(view.get("title"))) <= LIMITS["title"]:
            out.append("title must be 1-24 characters [/title]")
        for key in ("submit", "close"):
            if key in view and not 0 < len(_text(view[key])) <= LIMITS[key]:
                out.append(f"{key} must be 1-24 characters [/{key}]")
        if any(b.get("type") == "input" for b in blocks) and "submit" not in view:
            out.append("a modal with input blocks needs a submit button [/submit]")
    if len(str(view.get("private_metadata", ""))) > LIMITS["private_metadata"]:
        out.append("private_metadata too long [/private_metadata]")
    if len(str(view.get("callback_id", ""))) > LIMITS["callback_id"]:
        out.append("callback_id too long [/callback_id]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > LIMITS["block_id"] or block_id in seen:
                out.append(f"block_id too long or repeated [{where}/block_id]")
            seen.add(str(block_id))
        btype = block.get("type")
        if btype == "section":
            if len(_text(block.get("text"))) > LIMITS["section_text"]:
                out.append(f"section text longer than 3000 [{where}/text]")
            fields = block.get("fields") or []
            if len(fields) > LIMITS["section_fields"] or any(len(_text(f)) > LIMITS["field_text"] for f in fields):
                out.append(f"section fields over the limit [{where}/fields]")
            if not _text(block.get("text")) and not fields:
                out.append(f"section needs text or fields [{where}]")
            if isinstance(block.get("accessory"), dict):
                _check_element(block["accessory"], f"{where}/accessory", out)
        elif btype == "header":
            if not 0 < len(_text(block.get("text"))) <= LIMITS["header_text"]:
                out.append(f"header text must be 1-150 characters [{where}/text]")
        elif btype == "context":
            if not 0 < len(block.get("elements") or []) <= LIMITS["context_elements"]:
                out.append(f"context needs 1-10 elements [{where}/elements]")
        elif btype == "actions":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= LIMITS["actions_elements"]:
                out.append(f"actions needs 1-25 elements [{where}/elements]")
            for j, element in enumerate(elements):
                _check_element(element, f"{where}/elements/{j}", out)
        elif btype == "input":
            if kind == "home" and not block.get("dispatch_action"):
                out.append(f"input blocks need dispatch_action on the Home tab [{where}]")
            if not 0 < len(_text(block.get("label"))) <= LIMITS["input_label"]:
                out.append(f"input label must be 1-2000 characters [{where}/label]")
            element = block.get("element") or {}
            if element.get("type") not in INPUT_ELEMENTS:
                out.append(f"input element type {element.get('type')!r} not allowed [{where}/element]")
            _check_element(element, f"{where}/element", out)
        elif btype not in ("divider", "image", "rich_text", "video", "file"):
            out.append(f"unknown block type {btype!r} [{where}]")
    return out
