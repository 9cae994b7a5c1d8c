"""Replacing a call (RFC 3891, receiving side): the new call takes the old one's place.

An INVITE whose ``Replaces`` names one of our dialogs (dialog-core matched it and
refused what RFC 3891 §3 refuses: no match, an early dialog we answer, ``early-only``
for a confirmed one) is answered at once, without asking the handler: "the UA SHOULD
... accept the new INVITE without prompting the user" (RFC 3891 §3). Once the new call
is established the old one ends (BYE, or CANCEL while it still rings) and the new one
takes its role: its bridge, or else its audio source. ``CallReplaced`` tells the
application.

The call layer owns the state machines; this object only remembers which new call
replaces which old one, and moves the role across.
"""

from __future__ import annotations

from collections.abc import Callable

from rvoip_dialog_core import DialogId
from rvoip_session_core._bridge import BridgeManager
from rvoip_session_core._call import Call
from rvoip_session_core._events import CallReplaced, SessionEventType
from rvoip_session_core._registry import CallRegistry
from rvoip_session_core._types import CallState, SessionId

__all__ = ["CallReplacements"]


class CallReplacements:
    """Which incoming call replaces which call of ours, until the new one is established.

    Args:
        registry: the call records (finds the replaced call by its dialog).
        bridges: the coordinator's bridges (the new call takes the old one's seat).
        publish: publishes session events (``CallReplaced``).
    """

    def __init__(
        self,
        registry: CallRegistry,
        bridges: BridgeManager,
        publish: Callable[[SessionEventType], None],
    ) -> None:
        self._registry = registry
        self._bridges = bridges
        self._publish = publish
        self._waiting: dict[SessionId, SessionId] = {}
        """New call id -> the id of the call it replaces (until established or ended)."""

    @property
    def waiting(self) -> bool:
        """Whether any replacing call is not established yet (a cheap hot-path test)."""
        return bool(self._waiting)

    def refusal(self, dialog_id: DialogId) -> tuple[int, str] | None:
        """Why an INVITE replacing ``dialog_id`` must be refused (status, reason); None: go.

        dialog-core already answered 481/486 for what it can see; here the call itself is
        checked.
        """
        old = self._registry.for_dialog(dialog_id)
        if old is None or old.dialog_id not in (None, dialog_id):
            # RFC 3891 §3: no call of ours holds that dialog: 481.
            return 481, "Call/Transaction Does Not Exist"
        if old.state.is_final or old.state is CallState.Terminating:
            # RFC 3891 §3: "If the Replaces header field matches a dialog which has already
            # terminated, the UA SHOULD decline the request with a 603 Declined response."
            return 603, "Declined"
        if old.id in self._waiting.values():
            # Another INVITE is already replacing that call: the first one wins.
            return 603, "Declined"
        return None

    def begin(self, new: Call, dialog_id: DialogId) -> None:
        """Remember that ``new`` replaces the call of ``dialog_id`` (checked by ``refusal``)."""
        old = self._registry.for_dialog(dialog_id)
        assert old is not None
        self._waiting[new.id] = old.id

    def established(self, new: Call) -> Call | None:
        """``new`` is established: move the old call's role to it; returns the call to end.

        The old call's bridge seat goes to the new call (the others in the bridge now hear
        the new peer); a call in no bridge hands over its audio source.
        """
        old_id = self._waiting.pop(new.id, None)
        if old_id is None:
            return None
        old = self._registry.find(old_id)
        if old is None or old.state.is_final:
            return None
        bridge = self._bridges.bridge_of(old.id)
        if bridge is not None:
            self._bridges.remove(bridge.id, old.id, "replaced")
            self._bridges.add(bridge.id, new.media)
        else:
            new.media.slot.source = old.media.slot.source
        self._publish(CallReplaced(old.id, new.id))
        return old

    def forget(self, session_id: SessionId) -> None:
        """A call ended: it replaces nothing any more."""
        self._waiting.pop(session_id, None)
