"""Errors an evidence source raises; the pipeline turns them into `degraded` entries."""


class SourceError(Exception):
    """A source could not give its evidence; the message is one line a responder can act on."""
