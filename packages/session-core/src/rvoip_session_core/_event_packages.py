"""Two event packages on the subscription API: dialog (RFC 4235) and message-summary (RFC 3842).

- :class:`DialogEventPackage` serves the coordinator's calls as
  ``application/dialog-info+xml`` (full state, a version counter per subscription,
  trying/early/confirmed/terminated with direction and both identities): what a desk
  phone's busy-lamp field subscribes to.
- :class:`BusyLamp` subscribes to a user's ``dialog`` events and reports ``busy``,
  ``ringing`` or ``idle`` as they change.
- :class:`MessageWaiting` subscribes to a mailbox's ``message-summary`` and reports each
  :class:`~._event_bodies.MessageSummary`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from rvoip_session_core._call import Call
from rvoip_session_core._event_bodies import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    DialogInfoEntry,
    EventBodyError,
    MessageSummary,
    apply_dialog_info,
    blf_state,
    build_dialog_info,
    parse_dialog_info,
    parse_message_summary,
)
from rvoip_session_core._subscriptions import EventProvider, Subscription, resource_of
from rvoip_session_core._types import CallDirection, CallState, SessionId

__all__ = ["BusyLamp", "DialogEventPackage", "MessageWaiting", "dialog_state_of"]

log = logging.getLogger("rvoip_session_core")

# RFC 4235 §3.7.1: the dialog states the package reports, from our call states.
_DIALOG_STATE = {
    CallState.Initiating: "trying",
    CallState.Ringing: "early",
    CallState.EarlyMedia: "early",
    CallState.Active: "confirmed",
    CallState.OnHold: "confirmed",
    CallState.Transferring: "confirmed",
    CallState.Terminating: "terminated",
    CallState.Terminated: "terminated",
    CallState.Cancelled: "terminated",
    CallState.Failed: "terminated",
}
_STATE_EVENT = {CallState.Cancelled: "cancelled", CallState.Failed: "rejected"}


def dialog_state_of(state: CallState) -> str:
    """The RFC 4235 dialog state of a call state."""
    return _DIALOG_STATE[state]


class DialogEventPackage(EventProvider):
    """The ``dialog`` event package (RFC 4235) over a coordinator's calls.

    The resource is a user: a call belongs to the user of its local identity (From of
    calls we make, To of calls we take) and to the coordinator's own user. Each NOTIFY
    carries the full state (every live call of the resource; an ended call once, as
    ``terminated``). Install it with ``SessionManagerBuilder.with_dialog_event_package()``.
    """

    content_type = DIALOG_INFO_TYPE

    def __init__(self) -> None:
        super().__init__()
        self._find: Callable[[SessionId], Call | None] = lambda _sid: None
        self._own_user = ""
        self._host = ""
        self._calls: dict[SessionId, tuple[frozenset[str], DialogInfoEntry]] = {}

    def bind(self, find: Callable[[SessionId], Call | None], own_user: str, host: str) -> None:
        """Read calls through ``find``; ``own_user``/``host`` name the entity."""
        self._find, self._own_user, self._host = find, own_user, host

    def call_changed(self, sid: SessionId, state: CallState) -> None:
        """A call changed state: update its entry and notify the resources it belongs to."""
        call = self._find(sid)
        if call is None:
            return
        if _DIALOG_STATE[state] == "terminated" and sid not in self._calls:
            # Reported once (Terminating, then Terminated/Failed/Cancelled: one report), or
            # never seen alive: nothing for a subscriber to learn.
            return
        outgoing = call.direction == CallDirection.Outgoing
        local, remote = (call.from_, call.to) if outgoing else (call.to, call.from_)
        did = call.dialog_id
        entry = DialogInfoEntry(
            id=str(sid),
            state=_DIALOG_STATE[state],
            direction="initiator" if outgoing else "recipient",
            call_id=did.call_id if did is not None else None,
            local_tag=did.local_tag if did is not None else None,
            remote_tag=did.remote_tag if did is not None else None,
            local_identity=local,
            remote_identity=remote,
            event=_STATE_EVENT.get(state),
        )
        resources = frozenset(r for r in (resource_of(local), self._own_user) if r)
        self._calls[sid] = (resources, entry)
        for resource in resources:
            self.changed(resource)
        if entry.state == "terminated":
            # Reported once as terminated (RFC 4235 §3.7.1), then gone from the state.
            del self._calls[sid]

    def entries(self, resource: str) -> tuple[DialogInfoEntry, ...]:
        """The dialogs of ``resource`` now."""
        return tuple(entry for owners, entry in self._calls.values() if resource in owners)

    def document(self, resource: str, version: int) -> bytes:
        """The full dialog-info document of ``resource`` (any user: idle when no call)."""
        entity = f"sip:{resource}@{self._host}" if self._host else f"sip:{resource}"
        return build_dialog_info(entity, version, self.entries(resource))


class BusyLamp:
    """A busy-lamp field: a ``dialog`` subscription to one user, as busy/ringing/idle.

    ``async for lamp in busy_lamp`` yields the lamp state each time a NOTIFY changes it
    (the first NOTIFY always), and ends with the subscription. Full and partial
    documents are both understood (RFC 4235 §4.1: a partial one updates the dialogs it
    names). Documents that do not parse (or are not dialog-info) are skipped and counted
    in ``bad_documents``.
    """

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        """The underlying subscription (``unsubscribe()`` ends the lamp)."""
        self.state: str | None = None
        """The lamp now: ``busy``, ``ringing``, ``idle`` (None before the first NOTIFY)."""
        self.bad_documents = 0
        self.dialogs: dict[str, DialogInfoEntry] = {}
        """The watched user's live dialogs by id, as the documents told."""
        self._version = -1

    def __aiter__(self) -> BusyLamp:
        return self

    async def __anext__(self) -> str:
        async for notification in self.subscription:
            if not notification.body:
                continue
            try:
                info = parse_dialog_info(notification.body)
            except EventBodyError as exc:
                self.bad_documents += 1
                log.debug("BLF %s: document refused: %s", self.subscription.uri, exc)
                continue
            if 0 < info.version <= self._version:
                # RFC 4235 §4.1.2: an older or repeated version is discarded (a new
                # subscription starts over at 0).
                continue
            self._version = info.version
            self.dialogs = apply_dialog_info(self.dialogs, info)
            state = blf_state(attrs.evolve(info, dialogs=tuple(self.dialogs.values())))
            if state != self.state:
                self.state = state
                return state
        raise StopAsyncIteration

    async def close(self) -> None:
        """Unsubscribe."""
        await self.subscription.unsubscribe()


class MessageWaiting:
    """A ``message-summary`` subscription (RFC 3842): one summary per NOTIFY.

    ``async for summary in waiting`` yields each parsed
    :class:`~._event_bodies.MessageSummary`; malformed bodies are skipped and counted.
    """

    content_type = MESSAGE_SUMMARY_TYPE

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        """The underlying subscription."""
        self.summary: MessageSummary | None = None
        """The latest summary."""
        self.bad_documents = 0

    def __aiter__(self) -> MessageWaiting:
        return self

    async def __anext__(self) -> MessageSummary:
        async for notification in self.subscription:
            if not notification.body:
                continue
            try:
                summary = parse_message_summary(notification.body)
            except EventBodyError as exc:
                self.bad_documents += 1
                log.debug("MWI %s: body refused: %s", self.subscription.uri, exc)
                continue
            self.summary = summary
            return summary
        raise StopAsyncIteration

    async def close(self) -> None:
        """Unsubscribe."""
        await self.subscription.unsubscribe()
