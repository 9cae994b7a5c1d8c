"""Session timers (RFC 4028): Session-Expires / Min-SE negotiation and the per-dialog clock.

The refresher re-sends a session refresh at half the interval; the other side ends the
session if no refresh arrives before ``interval - min(32, interval / 3)`` (§10).
"""

from __future__ import annotations

import math
import re

import attrs

from rvoip_sip_core import MinSE, Request, Response, SessionExpires, SipParseError
from rvoip_sip_core._lexer import split_list

from ._config import DialogConfig
from ._dialog import DialogId
from ._timeline import Timeline

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


_UPDATE_TOKEN = re.compile(r"(?:^|,)[ \t]*UPDATE[ \t]*(?=,|$)", re.IGNORECASE)
"""``UPDATE`` as one element of an ``Allow`` list (RFC 3261 §20.5: ``Method *(COMMA Method)``)."""


def allows_update(message: Request | Response) -> bool | None:
    """Whether the peer's ``Allow`` lists UPDATE (None: the message carries no ``Allow``).

    RFC 3311 §5.1: a UA sends UPDATE only to a peer that indicated support for it; the
    ``Allow`` of its INVITE or of its 2xx tells (RFC 4028 §7.4: else refresh by re-INVITE).
    Asked once per answered call: the first line is searched alone (the usual case), the
    others only when there are several.
    """
    headers = message.headers
    first = headers.get("Allow")
    if first is None:
        return None
    if _UPDATE_TOKEN.search(first) is not None:
        return True
    if len(headers.positions("Allow")) == 1:
        return False
    return any(_UPDATE_TOKEN.search(line) is not None for line in headers.get_all("Allow"))


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
    dialog_id: DialogId | None = None
    own: bool = False
    """We run it on our own as UAS: the peer's INVITE asked for none (RFC 4028 §9)."""
    update_ok: bool = True
    """The peer allows UPDATE (its ``Allow`` named it, or it sent no ``Allow``): we refresh
    with UPDATE; otherwise the TU refreshes with a re-INVITE (``SessionRefreshDue``)."""
    expires: float = math.inf
    """When the session expires without a successful refresh (RFC 4028 §10)."""
    refreshing: bool = False
    """The refresh was sent (or asked of the TU) and no 2xx restarted the timer yet."""
    expired: bool = False
    """The session expired: the layer ends the dialog with BYE."""


class SessionTimers:
    """The session timers of all dialogs of a layer, on the layer's timeline.

    Args:
        config: Intervals (``session_expires``, ``min_se``, ``uas_session_expires``) and
            whether ``timer`` is supported at all.
        timeline: Where each running timer's deadline is kept (keyed by the timer).
    """

    def __init__(self, config: DialogConfig, timeline: Timeline | None = None) -> None:
        self._timeline = timeline if timeline is not None else Timeline()
        self._timers: dict[DialogId, SessionTimer] = {}
        self._own_answer: tuple[int, list[tuple[str, str]]] = (0, [])
        self.configure(config)

    def configure(self, config: DialogConfig) -> None:
        """Use a new configuration from now on (running timers keep their interval)."""
        self._config = config
        # Derived once (hot path: asked for every INVITE and UPDATE).
        self._enabled = "timer" in config.supported_lower
        wanted = config.uas_session_expires
        self._own = None if wanted is None else max(wanted, config.min_se, ABSOLUTE_MIN_SE)
        # RFC 4028 §7.1: the refresher we ask for in requests that start a session timer.
        refresher = config.session_refresher
        self._ask = f";refresher={refresher}" if refresher in ("uac", "uas") else ""

    @property
    def enabled(self) -> bool:
        """True when ``timer`` is among the supported option tags."""
        return self._enabled

    def get(self, dialog_id: DialogId) -> SessionTimer | None:
        """The running timer of a dialog."""
        return self._timers.get(dialog_id)

    def request_headers(self, dialog_id: DialogId | None) -> list[tuple[str, str]]:
        """Session-Expires and Min-SE for an INVITE or UPDATE we send (RFC 4028 §7.1)."""
        if not self._enabled:
            return []
        config = self._config
        timer = self._timers.get(dialog_id) if dialog_id is not None else None
        if timer is not None:
            refresher = "uac" if timer.we_refresh else "uas"
            value = f"{timer.interval};refresher={refresher}"
        elif config.session_expires is not None:
            value = f"{max(config.session_expires, config.min_se)}{self._ask}"
        else:
            return []
        return [("Session-Expires", value), ("Min-SE", str(config.min_se))]

    def too_small(self, request: Request) -> int | None:
        """RFC 4028 §8.1: our Min-SE when the request's Session-Expires is below it (422)."""
        if not self._enabled:
            return None
        se = _session_expires(request)
        if se is not None and se.seconds < self._config.min_se:
            return self._config.min_se
        return None

    def answer(
        self, request: Request, *, initial: bool = False, dialog_id: DialogId | None = None
    ) -> tuple[list[tuple[str, str]], tuple[int, str] | None]:
        """Headers for our 2xx to an INVITE/UPDATE and the negotiated (interval, refresher).

        RFC 4028 §9: the interval is the request's; the refresher is the one it asked for,
        else the UAC when it supports timers, else us. When the request asked for no
        session timer and ``initial`` (the dialog's first INVITE), we run our own with
        ``refresher=uas`` if ``uas_session_expires`` is set (see :meth:`own_interval`);
        a later request of the peer's in ``dialog_id`` keeps that own timer going.
        """
        if not self._enabled:
            return [], None
        se = _session_expires(request)
        if se is None:
            if initial:
                own = self.own_interval(request)
            else:
                timer = self._timers.get(dialog_id) if dialog_id is not None else None
                own = timer.interval if timer is not None and timer.own else None
            if own is None:
                return [], None
            # RFC 4028 §9: "the UAS MAY ... insert a Session-Expires header field in the
            # response" and, the UAC not having asked, be the refresher itself
            # (refresher=uas needs no Require: timer from a UAC that may not support it).
            cached = self._own_answer
            if cached[0] != own:
                # hot path (every call by default): one header list per interval.
                cached = self._own_answer = (own, [("Session-Expires", f"{own};refresher=uas")])
            return cached[1], (own, "uas")
        interval = max(se.seconds, _min_se(request))
        refresher = se.refresher
        uac_supports = _supports_timer(request)
        if refresher not in ("uac", "uas"):
            # RFC 4028 §9: the UAS chooses; ours is session_refresher (uac only when the
            # UAC supports timers), by default the UAC when it can.
            mine = self._config.session_refresher
            refresher = "uac" if uac_supports and mine != "uas" else "uas"
        elif refresher == "uac" and not uac_supports:
            refresher = "uas"
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if refresher == "uac":
            # RFC 4028 §9: a UAC refresher must be told it has to refresh.
            headers.append(("Require", "timer"))
        return headers, (interval, refresher)

    def own_headers(self) -> list[tuple[str, str]]:
        """The header lines of the last answer that started a timer of our own."""
        return self._own_answer[1]

    def own_interval(self, request: Request) -> int | None:
        """The interval we run on our own for an INVITE that asked for none (None: off).

        Never below the request's Min-SE (RFC 4028 §9) nor our own ``min_se``.
        """
        own = self._own
        if own is not None and "Min-SE" in request.headers:
            own = max(own, _min_se(request))
        return own

    def start(
        self,
        dialog_id: DialogId,
        interval: int,
        we_refresh: bool,
        now: float,
        *,
        own: bool = False,
        update_ok: bool | None = None,
    ) -> None:
        """(Re)start a dialog's session timer after a successful refresh.

        ``update_ok``: whether the peer allows UPDATE (:func:`allows_update` of its last
        message; None keeps what the running timer knew, else True).
        """
        # RFC 4028 §10: the refresher refreshes at half the interval; the session ends at
        # interval - min(32, interval/3) without a refresh (on both sides: the refresher
        # whose refresh never succeeded ends it too).
        expires = now + interval - min(32.0, interval / 3)
        due = now + interval / 2 if we_refresh else expires
        old = self._timers.get(dialog_id)
        if old is not None:
            self._timeline.cancel(old)
            if update_ok is None:
                update_ok = old.update_ok
        timer = self._timers[dialog_id] = SessionTimer(
            interval,
            we_refresh,
            due,
            dialog_id,
            own,
            update_ok=True if update_ok is None else update_ok,
            expires=expires,
        )
        self._timeline.set(timer, due)

    def from_response(self, dialog_id: DialogId, response: Response, now: float) -> None:
        """A 2xx to our INVITE/UPDATE: start the timer it negotiated (RFC 4028 §7.2)."""
        if not self._enabled:
            return
        se = _session_expires(response)
        update_ok = allows_update(response)
        if se is None:
            old = self._timers.get(dialog_id)
            if old is not None and old.own and old.we_refresh:
                # Our own timer (the peer runs none): its refresh needs no Session-Expires
                # in the answer; keep refreshing at the same interval.
                self.start(dialog_id, old.interval, True, now, own=True, update_ok=update_ok)
                return
            self.stop(dialog_id)
            return
        old = self._timers.get(dialog_id)
        own = old is not None and old.own and se.refresher != "uas"
        self.start(dialog_id, se.seconds, se.refresher != "uas", now, own=own, update_ok=update_ok)

    def raise_interval(self, dialog_id: DialogId, request: Request, response: Response) -> bool:
        """RFC 4028 §7.4: after a 422 to a refresh in a dialog, ask for the peer's Min-SE.

        True when ``request`` asked for less than the 422's Min-SE (retry it with the
        larger interval, which the dialog's later refreshes keep asking for); False when
        retrying would not help (it already asked for as much, or no timer is in use).
        """
        interval = self.retry_interval(response)
        asked = _session_expires(request)
        if interval is None or asked is None or asked.seconds >= interval:
            return False
        timer = self._timers.get(dialog_id)
        if timer is not None:
            timer.interval = max(timer.interval, interval)
        return True

    def retry_interval(self, response: Response) -> int | None:
        """RFC 4028 §7.4: the larger Session-Expires to retry with after a 422."""
        if response.status != 422 or not self._enabled:
            return None
        return _min_se(response)

    def stop(self, dialog_id: DialogId) -> None:
        """Forget a dialog's timer (the dialog ended)."""
        timer = self._timers.pop(dialog_id, None)
        if timer is not None:
            self._timeline.cancel(timer)

    def next_deadline(self) -> float | None:
        """The earliest deadline of the timeline these timers are kept on."""
        return self._timeline.next()

    def fire(self, timer: SessionTimer) -> bool:
        """A timer's deadline came (popped from the timeline); False when it is stale.

        A refresher's first deadline is the refresh (``refreshing`` set; the timer now
        waits until the session's expiry for the refresh's 2xx, which restarts it); any
        other deadline is the expiry (``expired`` set, the timer removed).
        """
        did = timer.dialog_id
        if did is None or self._timers.get(did) is not timer:
            return False
        if timer.we_refresh and not timer.refreshing:
            # RFC 4028 §10: refresh now. Should no refresh succeed (refused, never
            # answered, or the TU sent none), the session still expires and ends.
            timer.refreshing = True
            timer.due = timer.expires
            self._timeline.set(timer, timer.due)
        else:
            timer.expired = True
            del self._timers[did]
        return True

    def due(self, now: float) -> list[tuple[DialogId, SessionTimer]]:
        """Timers due at ``now`` when these timers have a timeline of their own."""
        out: list[tuple[DialogId, SessionTimer]] = []
        for key in self._timeline.pop_due(now):
            if isinstance(key, SessionTimer) and key.dialog_id is not None and self.fire(key):
                out.append((key.dialog_id, key))
        return out

    def __len__(self) -> int:
        return len(self._timers)
