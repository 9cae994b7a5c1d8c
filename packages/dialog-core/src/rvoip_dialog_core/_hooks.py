"""What the dialog layer's collaborators ask of the façade that holds them.

Ending a dialog touches every collaborator (pending requests get 487, forks forget their
early dialog, timers stop), and whether an INVITE is in progress in a dialog depends on
both the client and the server side. The façade answers these; a collaborator is given
the façade as this narrow protocol, so no collaborator module imports another's.
"""

from __future__ import annotations

from typing import Protocol

from rvoip_sip_core import Request

from ._dialog import Dialog, DialogId
from ._events import TerminationReason

__all__ = ["LayerHooks"]


class LayerHooks(Protocol):
    """Cross-collaborator operations, implemented by ``DialogLayer``."""

    def end_dialog(
        self, dialog: Dialog, reason: TerminationReason, status: int | None = None
    ) -> None:
        """End a dialog everywhere (tables, timers, pending requests) and report it."""
        ...

    def send_bye(
        self,
        dialog: Dialog,
        reason: TerminationReason,
        ref: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send a BYE the layer decided on (``ref``: the TU's, else internal) and end."""
        ...

    def invite_in_progress(self, dialog_id: DialogId) -> bool:
        """RFC 3261 §14.1: an INVITE transaction (either direction) is still open."""
        ...

    def awaiting_ack(self, dialog_id: DialogId) -> bool:
        """Our 2xx to the dialog's initial INVITE still waits for its ACK."""
        ...

    def new_ref(self) -> int:
        """A fresh reference number for a request or an answer the TU is given."""
        ...

    def event_request(self, request: Request, server: object, now: float) -> bool:
        """A SUBSCRIBE or NOTIFY for the RFC 6665 usages; True when handled there."""
        ...
