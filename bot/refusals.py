"""Refusing a Slack or PagerDuty delivery in the web process's one error format.

The bot may not import the web layer, so it raises this and the web app's error
handler (which knows the format) writes the body, with the request id.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException


class DeliveryRefused(HTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code
        self.message = message
