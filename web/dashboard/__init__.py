"""Server-rendered dashboard: investigation list and detail pages, login by API key."""

from web.dashboard.pages import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
