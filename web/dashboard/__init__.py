"""Server-rendered dashboard: investigation list and detail pages, login by API key."""

from web.dashboard.history_pages import router as history_router
from web.dashboard.pages import STATIC_DIR, router

__all__ = ["STATIC_DIR", "history_router", "router"]
