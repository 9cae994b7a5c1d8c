"""The dialog layer's output queue: wire actions for the driver, events for the session layer."""

from __future__ import annotations

from ._events import Action, DialogEvent

__all__ = ["Outbox"]


class Outbox:
    """Actions and events produced by every collaborator of a layer, in the order produced.

    One object owns both lists so that the collaborators need no reference to the façade
    to report what they did; the driver pulls them with :meth:`take_actions` and
    :meth:`take_events`.
    """

    __slots__ = ("_actions", "_events")

    def __init__(self) -> None:
        self._actions: list[Action] = []
        self._events: list[DialogEvent] = []

    def send(self, action: Action) -> None:
        """Queue a wire action (request, ACK or response) for the driver."""
        self._actions.append(action)

    def emit(self, event: DialogEvent) -> None:
        """Queue an event for the session layer."""
        self._events.append(event)

    def take_actions(self) -> list[Action]:
        """The queued actions, in order (and forget them)."""
        out = self._actions
        if out:
            self._actions = []
        return out

    def take_events(self) -> list[DialogEvent]:
        """The queued events, in order (and forget them)."""
        out = self._events
        if out:
            self._events = []
        return out
