"""How the Slack and PagerDuty endpoints look to the web process, and how they refuse a delivery.

The bot may not import the web layer: an endpoint raises DeliveryRefused and the
web process (web.direct), which knows the one error format, writes the body with
the request id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

# A signed-delivery endpoint: the request (headers, query) and its whole body, already read under the size limit.
Endpoint = Callable[[Request, bytes], Awaitable[Response]]


class DeliveryRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status
        self.code = code
        self.message = message
