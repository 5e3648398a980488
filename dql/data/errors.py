"""The one error type of the data layer, so callers can show it as one line and stop."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset that is missing, unreadable or malformed; the message says how to fix it."""
