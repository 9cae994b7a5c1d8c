"""Session timers (RFC 4028): Session-Expires / Min-SE negotiation and the per-dialog clock.

The refresher re-sends a session refresh at half the interval; the other side ends the
session if no refresh arrives before ``interval - min(32, interval / 3)`` (§10).
"""

from __future__ import annotations

import heapq
import itertools
import math

import attrs

from rvoip_sip_core import MinSE, Request, Response, SessionExpires, SipParseError
from rvoip_sip_core._lexer import split_list

from ._config import DialogConfig
from ._dialog import DialogId

__all__ = ["SessionTimer", "SessionTimers"]

ABSOLUTE_MIN_SE = 90
"""RFC 4028 §4: Min-SE is never below 90 seconds."""


def _session_expires(message: Request | Response) -> SessionExpires | None:
    try:
        return message.header(SessionExpires)
    except SipParseError:
        return None


def _min_se(message: Request | Response) -> int:
    try:
        value = message.header(MinSE)
    except SipParseError:
        return ABSOLUTE_MIN_SE
    return max(value.seconds, ABSOLUTE_MIN_SE) if value is not None else ABSOLUTE_MIN_SE


def _supports_timer(message: Request | Response) -> bool:
    headers = message.headers
    for name in ("Supported", "Require"):
        if name in headers:  # hot path: get_all of an absent header raises inside
            for line in headers.get_all(name):
                if any(t.lower() == "timer" for t in split_list(line)):
                    return True
    return False


@attrs.define(eq=False)
class SessionTimer:
    """The negotiated session interval of one dialog and who refreshes it."""

    interval: int
    we_refresh: bool
    due: float
    """When we refresh (we_refresh) or when the session expires (otherwise)."""


class SessionTimers:
    """The session timers of all dialogs of a layer."""

    def __init__(self, config: DialogConfig) -> None:
        self.config = config
        self._timers: dict[DialogId, SessionTimer] = {}
        # (due, n, dialog, timer), popped lazily: an entry whose timer was replaced,
        # stopped or parked (due = inf) is dropped when it reaches the top.
        self._heap: list[tuple[float, int, DialogId, SessionTimer]] = []
        self._order = itertools.count()
        self._compact_at = 64
        self._started = 0
        """Counts timers started (see ``LayerBase._deadlines_added``)."""

    @property
    def enabled(self) -> bool:
        """True when ``timer`` is among the supported option tags."""
        return "timer" in self.config.supported_lower

    def get(self, dialog_id: DialogId) -> SessionTimer | None:
        """The running timer of a dialog."""
        return self._timers.get(dialog_id)

    def request_headers(self, dialog_id: DialogId | None) -> list[tuple[str, str]]:
        """Session-Expires and Min-SE for an INVITE or UPDATE we send (RFC 4028 §7.1)."""
        if not self.enabled:
            return []
        timer = self._timers.get(dialog_id) if dialog_id is not None else None
        if timer is not None:
            refresher = "uac" if timer.we_refresh else "uas"
            value = f"{timer.interval};refresher={refresher}"
        elif self.config.session_expires is not None:
            value = str(max(self.config.session_expires, self.config.min_se))
        else:
            return []
        return [("Session-Expires", value), ("Min-SE", str(self.config.min_se))]

    def too_small(self, request: Request) -> int | None:
        """RFC 4028 §8.1: our Min-SE when the request's Session-Expires is below it (422)."""
        if not self.enabled:
            return None
        se = _session_expires(request)
        if se is not None and se.seconds < self.config.min_se:
            return self.config.min_se
        return None

    def answer(self, request: Request) -> tuple[list[tuple[str, str]], tuple[int, str] | None]:
        """Headers for our 2xx to an INVITE/UPDATE and the negotiated (interval, refresher).

        RFC 4028 §9: the interval is the request's; the refresher is the one it asked for,
        else the UAC when it supports timers, else us.
        """
        se = _session_expires(request) if self.enabled else None
        if se is None:
            return [], None
        interval = max(se.seconds, _min_se(request))
        refresher = se.refresher
        uac_supports = _supports_timer(request)
        if refresher not in ("uac", "uas"):
            refresher = "uac" if uac_supports else "uas"
        elif refresher == "uac" and not uac_supports:
            refresher = "uas"
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if refresher == "uac":
            # RFC 4028 §9: a UAC refresher must be told it has to refresh.
            headers.append(("Require", "timer"))
        return headers, (interval, refresher)

    def start(self, dialog_id: DialogId, interval: int, we_refresh: bool, now: float) -> None:
        """(Re)start a dialog's session timer after a successful refresh."""
        # RFC 4028 §10: the refresher refreshes at half the interval; the other side ends
        # the session at interval - min(32, interval/3) without a refresh.
        due = now + (interval / 2 if we_refresh else interval - min(32.0, interval / 3))
        timers, heap = self._timers, self._heap
        timer = timers[dialog_id] = SessionTimer(interval, we_refresh, due)
        heapq.heappush(heap, (due, next(self._order), dialog_id, timer))
        self._started += 1
        if len(heap) > self._compact_at:
            # Stopped and replaced timers' entries: drop them before they pile up.
            heap[:] = [e for e in heap if timers.get(e[2]) is e[3] and e[3].due == e[0]]
            heapq.heapify(heap)
            self._compact_at = max(64, 2 * len(heap))

    def from_response(self, dialog_id: DialogId, response: Response, now: float) -> None:
        """A 2xx to our INVITE/UPDATE: start the timer it negotiated (RFC 4028 §7.2)."""
        if not self.enabled:
            return
        se = _session_expires(response)
        if se is None:
            self._timers.pop(dialog_id, None)
            return
        self.start(dialog_id, se.seconds, se.refresher != "uas", now)

    def retry_interval(self, response: Response) -> int | None:
        """RFC 4028 §7.4: the larger Session-Expires to retry with after a 422."""
        if response.status != 422 or not self.enabled:
            return None
        return _min_se(response)

    def stop(self, dialog_id: DialogId) -> None:
        """Forget a dialog's timer (the dialog ended)."""
        self._timers.pop(dialog_id, None)

    def next_deadline(self) -> float | None:
        """The earliest refresh or expiry."""
        # hot path (asked after every message): the top of the heap, stale entries dropped.
        heap, timers = self._heap, self._timers
        while heap:
            due, _, did, timer = heap[0]
            if timers.get(did) is timer and timer.due == due:
                return due
            heapq.heappop(heap)
        return None

    def due(self, now: float) -> list[tuple[DialogId, SessionTimer]]:
        """Timers due at ``now``.

        An expired one is removed; a refresher's waits (no deadline) for the refresh's 2xx,
        which restarts it.
        """
        heap, timers = self._heap, self._timers
        out: list[tuple[DialogId, SessionTimer]] = []
        while heap and heap[0][0] <= now:
            due, _, did, timer = heapq.heappop(heap)
            if timers.get(did) is timer and timer.due == due:
                out.append((did, timer))
        for did, timer in out:
            if timer.we_refresh:
                timer.due = math.inf
            else:
                del self._timers[did]
        return out

    def __len__(self) -> int:
        return len(self._timers)
