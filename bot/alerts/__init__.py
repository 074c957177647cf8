"""Alert posts from monitoring and paging tools in Slack: one parser per tool, one table of recognisers."""

from bot.alerts.base import AlertParser, AlertPost
from bot.alerts.registry import PARSERS, parser_for, recognise

__all__ = ["PARSERS", "AlertParser", "AlertPost", "parser_for", "recognise"]
