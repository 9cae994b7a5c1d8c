"""The errors of rvoip_dialog_core: one base, and the local-misuse error."""

from __future__ import annotations

__all__ = ["DialogError", "DialogUsageError"]


class DialogError(Exception):
    """Base of every error raised by rvoip_dialog_core."""


class DialogUsageError(DialogError, ValueError):
    """The caller asked for something invalid: an unknown dialog or request, a wrong state."""
