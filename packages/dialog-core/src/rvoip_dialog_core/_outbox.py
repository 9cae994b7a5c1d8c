"""The dialog layer's output queue: wire actions for the driver, events for the session layer."""

from __future__ import annotations

from collections.abc import Callable

from ._events import Action, DialogEvent

__all__ = ["Outbox"]


class Outbox:
    """Actions and events produced by every collaborator of a layer, in the order produced.

    One object owns both lists so that the collaborators need no reference to the façade
    to report what they did; the driver pulls them with :meth:`take_actions` and
    :meth:`take_events`.
    """

    __slots__ = ("_actions", "_events", "emit", "send")

    def __init__(self) -> None:
        self._actions: list[Action] = []
        self._events: list[DialogEvent] = []
        # hot path (several per message): the lists' own append, no Python-level call.
        self.send: Callable[[Action], None] = self._actions.append
        """Queue a wire action (request, ACK or response) for the driver."""
        self.emit: Callable[[DialogEvent], None] = self._events.append
        """Queue an event for the session layer."""

    def take_actions(self) -> list[Action]:
        """The queued actions, in order (and forget them)."""
        actions = self._actions
        if not actions:
            return []
        out = actions.copy()
        actions.clear()  # the same list: ``send`` stays bound to it
        return out

    def take_events(self) -> list[DialogEvent]:
        """The queued events, in order (and forget them)."""
        events = self._events
        if not events:
            return []
        out = events.copy()
        events.clear()  # the same list: ``emit`` stays bound to it
        return out
