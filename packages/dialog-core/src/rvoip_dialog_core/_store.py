"""The dialog store: the live dialogs of a layer, by dialog id, call leg and Call-ID."""

from __future__ import annotations

from collections.abc import Callable

from ._dialog import Dialog, DialogId, LegId
from ._errors import DialogUsageError

__all__ = ["DialogStore"]


class DialogStore:
    """Live dialogs (early and confirmed), keyed by :class:`DialogId`.

    Lookups by id are the hot path (a dict); by call leg and by Call-ID are scans, for the
    rarer questions ("the forks of this call", "every dialog of this Call-ID").
    """

    __slots__ = ("_dialogs", "get")

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        # hot path: lookups go straight to the dict's own (C) get.
        self.get: Callable[[DialogId], Dialog | None] = self._dialogs.get
        """The live dialog with this id, or None."""

    def require(self, dialog_id: DialogId) -> Dialog:
        """The live dialog with this id.

        Raises:
            DialogUsageError: there is none (never was, or it ended).
        """
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            raise DialogUsageError(f"no such dialog: {dialog_id}")
        return dialog

    def add(self, dialog: Dialog) -> None:
        """Store a dialog under its id (replacing one with the same id)."""
        self._dialogs[dialog.id] = dialog

    def holds(self, dialog: Dialog) -> bool:
        """Whether this very dialog object is the live one under its id."""
        return self._dialogs.get(dialog.id) is dialog

    def remove(self, dialog: Dialog) -> None:
        """Forget a dialog (when it is the one stored under its id)."""
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def of_leg(self, leg: LegId) -> list[Dialog]:
        """The live dialogs of one call leg (the forks of one INVITE of ours, or one call)."""
        return [d for d in self._dialogs.values() if d.id.leg == leg]

    def of_call_id(self, call_id: str) -> list[Dialog]:
        """The live dialogs of one Call-ID (forks of one call share it)."""
        return [d for d in self._dialogs.values() if d.id.call_id == call_id]

    def all(self) -> tuple[Dialog, ...]:
        """All live dialogs, in creation order."""
        return tuple(self._dialogs.values())

    def __len__(self) -> int:
        return len(self._dialogs)

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._dialogs
