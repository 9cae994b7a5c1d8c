"""The state tables and helpers shared by every part of the dialog layer."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import Iterable

from rvoip_sip_core import Request, Response, make_response, new_tag

from ._config import DialogConfig
from ._dialog import Dialog, DialogId, DialogState, LegId
from ._errors import DialogUsageError
from ._events import (
    Action,
    DialogEvent,
    DialogTerminated,
    SendRequest,
    SendResponse,
    TerminationReason,
)
from ._records import (
    ClientRequest,
    DeferredRequest,
    DialogTable,
    ServerRequest,
    UacInvite,
    UasInvite,
)
from ._session_timer import SessionTimer, SessionTimers
from ._states import Trigger

__all__ = ["LayerBase"]

# The dialog state machine's trigger for each way a dialog ends (same names).
_TRIGGER_OF = {reason: Trigger[reason.name] for reason in TerminationReason}


class LayerBase:
    """The dialog layer's tables (dialogs, pending requests, timers) and shared helpers."""

    def __init__(self, config: DialogConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self.stats: Counter[str] = Counter()
        self._dialogs: dict[DialogId, Dialog] = {}
        self._client: dict[tuple[str, str], ClientRequest] = {}
        # INVITEs that got their 2xx: kept 64*T1 to ACK retransmissions and late forks,
        # expiring in order (a deque: every one lives exactly 64*T1).
        self._completed: dict[tuple[str, str], ClientRequest] = {}
        self._expiry: deque[tuple[float, tuple[str, str]]] = deque()
        # 2xx whose ACK the TU sends itself (defer_ack): dialog -> (request, remote key).
        self._held: dict[DialogId, tuple[ClientRequest, str]] = {}
        self._cancelling: dict[LegId, UacInvite] = {}  # CANCEL sent, final still awaited
        self._uac_invites: dict[LegId, UacInvite] = {}
        self._uas_invites: DialogTable[object, UasInvite] = DialogTable()
        self._server: DialogTable[int, ServerRequest] = DialogTable()
        self._retries: list[ClientRequest] = []
        self._deferred: list[DeferredRequest] = []
        self._refers: dict[DialogId, int] = {}
        self._actions: list[Action] = []
        self._events: list[DialogEvent] = []
        self._next_ref = 0
        self._now = 0.0
        """The latest time given by any input (for deadlines set inside shared helpers)."""
        self._session_timers = SessionTimers(config)
        # Deadlines of the records above, (when, n, record), for next_deadline: an entry is
        # dropped lazily once its record left its table or its deadline changed.
        self._timeline: list[tuple[float, int, UasInvite | ClientRequest | UacInvite]] = []
        self._order = itertools.count()
        self._compact_at = 64
        self._deadlines_added = 0
        """Counts deadlines set (the earliest deadline can only move earlier when it grows)."""

    # --- deadlines --------------------------------------------------------------------------

    def _at(self, when: float, record: UasInvite | ClientRequest | UacInvite) -> None:
        """Note a deadline just set on ``record`` (every deadline assignment calls this)."""
        heap = self._timeline
        heapq.heappush(heap, (when, next(self._order), record))
        self._deadlines_added += 1
        if len(heap) > self._compact_at:
            # Entries of finished records: drop them before they pile up (amortized O(1)).
            heap[:] = [e for e in heap if self._live(e[0], e[2])]
            heapq.heapify(heap)
            self._compact_at = max(64, 2 * len(heap))

    def _at_uas(self, uas: UasInvite) -> None:
        """Note the earliest deadline of a UAS INVITE after any of its deadlines changed."""
        when = _uas_next(uas)
        if when is not None:
            self._at(when, uas)

    def _live(self, when: float, record: UasInvite | ClientRequest | UacInvite) -> bool:
        """Whether a timeline entry still stands for a deadline of a live record."""
        if isinstance(record, UasInvite):
            live = self._uas_invites.get(record.pending.server) is record
            return live and when == _uas_next(record)
        if isinstance(record, ClientRequest):
            if when == record.expires_at:
                request = record.request
                key = (request.top_via.branch or "", request.method)
                if self._client.get(key) is record:
                    return True
            return when == record.retry_at and record in self._retries
        return when == record.cancel_deadline and self._cancelling.get(record.leg) is record

    def _timeline_next(self) -> float | None:
        """The earliest live deadline of the timeline (stale entries on top dropped)."""
        heap = self._timeline
        while heap:
            when, _, record = heap[0]
            if self._live(when, record):
                return when
            heapq.heappop(heap)
        return None

    # --- helpers --------------------------------------------------

    def _new_ref(self) -> int:
        self._next_ref += 1
        return self._next_ref

    def _emit(self, event: DialogEvent) -> None:
        self._events.append(event)

    def _send(self, creq: ClientRequest) -> None:
        key = (creq.request.top_via.branch or "", creq.request.method)
        self._client[key] = creq
        self._actions.append(SendRequest(creq.request))

    def _complete(self, creq: ClientRequest, now: float) -> None:
        """Our INVITE got its (first) 2xx: keep it 64*T1 for retransmissions and forks."""
        key = (creq.request.top_via.branch or "", creq.request.method)
        self._client.pop(key, None)
        creq.final = True
        creq.expires_at = now + 64 * self.config.t1
        self._completed[key] = creq
        self._expiry.append((creq.expires_at, key))
        self._deadlines_added += 1

    def _dialog(self, dialog_id: DialogId) -> Dialog:
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            raise DialogUsageError(f"no such dialog: {dialog_id}")
        return dialog

    def dialog(self, dialog_id: DialogId) -> Dialog | None:
        """The live dialog with this id (None once it has ended)."""
        return self._dialogs.get(dialog_id)

    def session_timer(self, dialog_id: DialogId) -> SessionTimer | None:
        """The running RFC 4028 session timer of a dialog (interval, who refreshes, due)."""
        return self._session_timers.get(dialog_id)

    @property
    def dialogs(self) -> tuple[Dialog, ...]:
        """All live dialogs, early and confirmed."""
        return tuple(self._dialogs.values())

    def _capabilities(self) -> list[tuple[str, str]]:
        # Allow and Supported advertised in INVITE/UPDATE/OPTIONS and their answers.
        return list(self.config.capabilities)

    def _end_dialog(
        self, dialog: Dialog, reason: TerminationReason, status: int | None = None
    ) -> None:
        if dialog.state is DialogState.TERMINATED:
            if self._dialogs.get(dialog.id) is dialog:
                del self._dialogs[dialog.id]
            return
        try:
            dialog.move(_TRIGGER_OF[reason])
        except DialogUsageError:
            # Not in the table: still end it (a dialog is never left half-alive).
            self.stats[f"forced_end_{dialog.state.value}_{reason.value}"] += 1
            dialog.state = DialogState.TERMINATED
        self._dialogs.pop(dialog.id, None)
        # hot path: the tables below are often empty (a plain UAS has no UAC INVITEs).
        inv = self._uac_invites.get(dialog.id.leg) if self._uac_invites else None
        if inv is not None and inv.early.get(dialog.id.remote_tag) is dialog:
            del inv.early[dialog.id.remote_tag]
        if self._refers:
            self._refers.pop(dialog.id, None)
        self._session_timers.stop(dialog.id)
        # A 2xx of ours still waiting for its ACK keeps being retransmitted (the peer's
        # INVITE transaction must complete); the ACK timeout then just forgets it.
        for creq in self._client.values():
            if creq.dialog_id == dialog.id and creq.request.method == "INVITE" and not creq.final:
                # A re-INVITE whose dialog ended: give its answer 64*T1, then report 408.
                creq.expires_at = self._now + 64 * self.config.t1
                self._at(creq.expires_at, creq)
        if self._retries:
            self._retries[:] = [c for c in self._retries if c.dialog_id != dialog.id]
        for ref, pending in self._server.of(dialog.id):
            if not pending.final_sent:
                # RFC 3261 §15.1.2: requests still pending in the ended dialog get 487.
                del self._server[ref]
                pending.final_sent = True
                self._uas_invites.pop(pending.server, None)
                self._reply(pending.request, pending.server, 487, to_tag=dialog.id.local_tag)
        self._emit(DialogTerminated(dialog.id, reason, status))

    def _awaiting_ack(self, dialog_id: DialogId) -> UasInvite | None:
        """Our 2xx to the dialog's initial INVITE, still waiting for its ACK."""
        for _, uas in self._uas_invites.of(dialog_id):
            if uas.response is not None and not uas.reinvite:
                return uas
        return None

    def _send_bye(
        self,
        dialog: Dialog,
        reason: TerminationReason,
        ref: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send a BYE the layer decided on (``ref``: the TU's, else internal) and end."""
        bye = dialog.build_request("BYE", self.config, self._rng, headers=headers)
        internal = ref is None
        self._send(
            ClientRequest(
                ref=self._new_ref() if ref is None else ref,
                request=bye,
                dialog_id=None if internal else dialog.id,
                internal=internal,
            )
        )
        self._end_dialog(dialog, reason)

    def _reply(
        self,
        request: Request,
        server: object,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        send: bool = True,
    ) -> Response:
        extra = list(headers)
        user_agent = self.config.user_agent
        if user_agent:
            extra.append(("Server", user_agent))
        tagged = request.to.tag is not None
        if to_tag is None and not tagged and status > 100:
            # RFC 3261 §8.2.6.2: a response without To tag gets one (stateless rejections).
            to_tag = new_tag(self._rng)
        response = make_response(
            request,
            status,
            reason,
            to_tag=None if tagged else to_tag,
            headers=extra,
            body=body,
            content_type=content_type,
        )
        if send:
            self._actions.append(SendResponse(response, server))
        return response

    # --- output--------------------------------------------------------------------------

    def take_actions(self) -> list[Action]:
        """Actions for the driver, in order (and forget them)."""
        out, self._actions = self._actions, []
        return out

    def take_events(self) -> list[DialogEvent]:
        """Events for the session layer, in order (and forget them)."""
        out, self._events = self._events, []
        return out

    def __len__(self) -> int:
        """Number of live dialogs (early and confirmed)."""
        return len(self._dialogs)

    def pending(self) -> Counter[str]:
        """Sizes of the internal tables (to check nothing leaks after many calls)."""
        return Counter(
            dialogs=len(self._dialogs),
            client=len(self._client),
            completed=len(self._completed),
            held_acks=len(self._held),
            cancelling=len(self._cancelling),
            uac_invites=len(self._uac_invites),
            uas_invites=len(self._uas_invites),
            server=len(self._server),
            retries=len(self._retries),
            deferred=len(self._deferred),
        )


def _uas_next(uas: UasInvite) -> float | None:
    """The earliest of a UAS INVITE's deadlines (2xx retransmission, ACK and PRACK waits)."""
    # hot path: no list built.
    best = None
    for t in (uas.retransmit_at, uas.give_up_at, uas.prack_at, uas.prack_give_up):
        if t is not None and (best is None or t < best):
            best = t
    return best
