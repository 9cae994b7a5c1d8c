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
        # Callers look ``send``/``emit`` up on the outbox each time (never keep them): a
        # take installs a fresh list and re-binds them to it.
        self.send: Callable[[Action], None] = self._actions.append
        """Queue a wire action (request, ACK or response) for the driver."""
        self.emit: Callable[[DialogEvent], None] = self._events.append
        """Queue an event for the session layer."""

    def take_actions(self) -> list[Action]:
        """The queued actions, in order (and forget them)."""
        out = self._actions
        if out:
            fresh: list[Action] = []
            self._actions, self.send = fresh, fresh.append
        return out

    def take(self) -> tuple[list[Action], list[DialogEvent]] | None:
        """Both queues at once (None when both are empty), for a driver's flush loop.

        Hot path: one call per round of a flush instead of two, and a single check when
        there is nothing to do (the common case at the end of every flush).
        """
        actions, events = self._actions, self._events
        if not actions and not events:
            return None
        if actions:
            fresh_actions: list[Action] = []
            self._actions, self.send = fresh_actions, fresh_actions.append
        if events:
            fresh_events: list[DialogEvent] = []
            self._events, self.emit = fresh_events, fresh_events.append
        return actions, events

    def take_events(self) -> list[DialogEvent]:
        """The queued events, in order (and forget them)."""
        out = self._events
        if out:
            fresh: list[DialogEvent] = []
            self._events, self.emit = fresh, fresh.append
        return out
