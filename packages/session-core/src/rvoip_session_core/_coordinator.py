"""``SessionCoordinator``: the seed's SessionControl and MediaControl on one object."""

from __future__ import annotations

import logging
from datetime import timedelta

import anyio
import attrs

from rvoip_dialog_core import DialogId, DialogUsageError, target_for
from rvoip_session_core._bridge import BridgeInfo, BridgeManager
from rvoip_session_core._call import Call
from rvoip_session_core._config import SessionConfig
from rvoip_session_core._errors import (
    CallCancelled,
    CallFailed,
    InvalidState,
    MediaError,
    SessionError,
    Timeout,
    TransportError,
)
from rvoip_session_core._events import BridgeEventType, EventSubscription, LazyEvent
from rvoip_session_core._handlers import CallHandler
from rvoip_session_core._media_control import MediaPart
from rvoip_session_core._offer_answer import negotiated, parse_offer, with_direction
from rvoip_session_core._state import DTMF_DIGITS, dtmf_relay_body
from rvoip_session_core._types import (
    Accept,
    BridgeId,
    CallSession,
    CallState,
    IncomingCall,
    Reject,
    SessionId,
    SessionStats,
)
from rvoip_sip_core import (
    Request,
    Response,
    SipParseError,
    make_request,
    new_call_id,
    new_tag,
    parse_uri,
)
from rvoip_transaction_core import TransactionTimeoutError, TransportFailedError

log = logging.getLogger("rvoip_session_core")

Seconds = float | timedelta


def _seconds(value: Seconds) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@attrs.frozen
class PreparedCall:
    """An outgoing call with its media ready and SDP offer built, not yet sent."""

    session_id: SessionId
    from_: str
    to: str
    sdp_offer: str
    local_rtp_port: int


def _session_id(call: str | IncomingCall | CallSession | PreparedCall) -> str:
    if isinstance(call, IncomingCall | CallSession):
        return call.id
    if isinstance(call, PreparedCall):
        return call.session_id
    return call


class SessionCoordinator(MediaPart):
    """Makes, answers and controls calls; build it with ``SessionManagerBuilder``.

    Start it with ``await coordinator.start()`` (stop with ``stop()``) or use it as
    ``async with``; ``SessionControl.x(coordinator, ...)`` and ``coordinator.x(...)`` are
    the same call.
    """

    def __init__(self, config: SessionConfig, handler: CallHandler) -> None:
        super().__init__(config, handler)
        self._bridges = BridgeManager(prefix=f"bridge-{self._prefix}")

    async def stop(self) -> None:
        """End every call and bridge, then close sockets and tasks."""
        await super().stop()
        self._bridges.close()

    # --- making calls ---------------------------------------------------------------------

    async def prepare_outgoing_call(self, from_: str, to: str) -> PreparedCall:
        """Open media and build the SDP offer of a call to ``to`` without sending it yet."""
        try:
            parse_uri(to)
        except SipParseError as exc:
            raise InvalidState(f"bad target URI {to!r}: {exc.reason}") from None
        call = self._new_call("outgoing", from_, to)
        try:
            await self._open_media(call)
        except SessionError:
            self._finish(call, CallState.Failed, "no media ports")
            raise
        call.local_sdp = self._offer_for(call)
        port = call.media.local_port
        assert port is not None
        return PreparedCall(call.id, from_, to, str(call.local_sdp), port)

    async def initiate_prepared_call(self, prepared: PreparedCall) -> CallSession:
        """Send the INVITE of a prepared call."""
        call = self._call(prepared.session_id)
        if call.leg is not None:
            raise InvalidState("the call was already initiated", session_id=call.id)
        body = b"" if call.local_sdp is None else call.local_sdp.encode()
        with self._gate:  # events of this INVITE wait until the leg is recorded
            leg = self.endpoint.invite(call.to, from_=call.from_, body=body)
            call.leg = leg
            self._by_leg[leg] = call.id
        return call.snapshot()

    async def create_outgoing_call(
        self, from_: str, to: str, sdp: str | None = None
    ) -> CallSession:
        """Call ``to`` as ``from_``; ``sdp`` is the offer (None: generated)."""
        prepared = await self.prepare_outgoing_call(from_, to)
        if sdp is not None:
            self._call(prepared.session_id).local_sdp = parse_offer(sdp)
        return await self.initiate_prepared_call(prepared)

    async def wait_for_answer(self, session_id: str, timeout: Seconds = 30.0) -> None:
        """Wait until the call is answered.

        Raises:
            CallFailed: the call was rejected (``status`` is the SIP code).
            CallCancelled: it was cancelled.
            Timeout: no answer within ``timeout`` (the call keeps ringing).
        """
        await self._wait_answer(SessionId(str(session_id)), _seconds(timeout))

    async def _wait_answer(self, session_id: SessionId, timeout: float) -> None:
        call = self._call_or_ended(session_id)
        with anyio.move_on_after(timeout):
            async with anyio.create_task_group() as tg:

                async def first(event: LazyEvent) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(first, call.answered)
                tg.start_soon(first, call.ended)
        if call.answered.is_set():
            return
        if call.state is CallState.Cancelled:
            raise CallCancelled(session_id=call.id)
        if call.state.is_final:
            raise CallFailed(
                call.final_status or 0,
                call.final_reason or call.end_reason or "",
                session_id=call.id,
            )
        raise Timeout(f"not answered within {timeout:g}s", session_id=call.id)

    async def _place_call(self, from_: str, to: str) -> Call:
        session = await self.create_outgoing_call(from_, to)
        return self._call(session.id)

    # --- answering ------------------------------------------------------------------------

    async def accept_incoming_call(
        self, call: IncomingCall | str, sdp: str | None = None
    ) -> CallSession:
        """Answer a deferred incoming call with 200 (``sdp``: the answer, None to generate)."""
        record = self._call(_session_id(call))
        if record.direction != "incoming" or record.invite_ref is None:
            raise InvalidState("the call is not waiting for an answer", session_id=record.id)
        await self._decide(record, Accept(sdp))
        with anyio.move_on_after(5.0):
            await _either(record.answered, record.ended)
        return record.snapshot()

    async def reject_incoming_call(
        self, call: IncomingCall | str, reason: str = "Decline", status: int = 603
    ) -> None:
        """Refuse a deferred incoming call (default 603 Decline)."""
        record = self._call(_session_id(call))
        if record.direction != "incoming" or record.invite_ref is None:
            raise InvalidState("the call is not waiting for an answer", session_id=record.id)
        await self._decide(record, Reject(reason, status))

    # --- in-call control ------------------------------------------------------------------

    def _established_call(self, session_id: str) -> Call:
        call = self._call(session_id)
        if not call.state.is_established or call.dialog_id is None:
            raise InvalidState(
                f"needs an answered call, state is {call.state.name}", session_id=call.id
            )
        return call

    async def hold_session(self, session_id: str) -> None:
        """Put the call on hold: re-INVITE with sendonly (RFC 3264 §8.4); our audio stops."""
        call = self._established_call(session_id)
        if call.state is CallState.OnHold:
            return
        await self._redirect(call, "sendonly", held=True)
        self._set_state(call, CallState.OnHold, "hold")

    async def resume_session(self, session_id: str) -> None:
        """Take the call off hold: re-INVITE with sendrecv."""
        call = self._established_call(session_id)
        if call.state is not CallState.OnHold:
            return
        await self._redirect(call, "sendrecv", held=False)
        self._set_state(call, CallState.Active, "resume")

    async def _redirect(self, call: Call, direction: str, *, held: bool) -> None:
        if call.local_sdp is None:
            raise InvalidState("no SDP to re-offer", session_id=call.id)
        offer = with_direction(call.local_sdp, direction)
        await self._reoffer_to_peer(call, offer.encode())
        call.media.set_held(held)

    async def _reoffer_to_peer(self, call: Call, body: bytes) -> None:
        response = await self._request(call, "INVITE", body=body)
        if response.status >= 300:
            raise CallFailed(response.status, response.reason, session_id=call.id)
        offer = parse_offer(body)
        answer = parse_offer(response.body)
        call.local_sdp, call.remote_sdp = offer, answer
        call.media.apply(negotiated(offer, answer, answer_is_local=False))

    async def update_media(self, session_id: str, sdp: str | None = None) -> None:
        """Re-negotiate media by re-INVITE with ``sdp`` (None: a fresh offer, same port)."""
        call = self._established_call(session_id)
        if sdp is None:
            assert call.local_sdp is not None
            offer = self._offer_for(call, "sendonly" if call.media.held else "sendrecv")
            offer = attrs.evolve(offer, origin=call.local_sdp.origin).with_next_version()
            body = offer.encode()
        else:
            body = parse_offer(sdp).encode()
        await self._reoffer_to_peer(call, body)

    async def send_dtmf(self, session_id: str, digits: str, method: str = "rfc4733") -> None:
        """Send DTMF ``digits`` (e.g. "1234#") as RFC 4733 events, or by SIP INFO.

        RFC 4733 is used when the peer accepted telephone-event, else SIP INFO.
        """
        call = self._established_call(session_id)
        bad = [d for d in digits.upper() if d not in DTMF_DIGITS]
        if bad or not digits:
            raise InvalidState(f"not DTMF digits: {digits!r}", session_id=call.id)
        neg = call.media.negotiated
        if method == "rfc4733" and neg is not None and neg.dtmf_payload_type is not None:
            await call.media.send_dtmf(digits.upper())
            return
        for digit in digits.upper():
            response = await self._request(
                call,
                "INFO",
                body=dtmf_relay_body(digit, 160),
                content_type="application/dtmf-relay",
            )
            if response.status >= 300:
                raise CallFailed(response.status, response.reason, session_id=call.id)

    async def transfer_session(self, session_id: str, target: str) -> None:
        """Blind transfer: REFER the peer to ``target`` (RFC 3515); returns once accepted.

        Progress arrives as ``TransferProgress`` events; when the transferee reaches the
        target our call is hung up. Raises CallFailed if the peer refuses (e.g. 603).
        """
        call = self._established_call(session_id)
        previous = call.state
        self._set_state(call, CallState.Transferring, f"transfer to {target}")
        call.transfer_done = LazyEvent()
        call.transfer_status = None
        response = await self._request(call, "REFER", refer_to=target)
        if response.status >= 300:
            if call.state is CallState.Transferring:
                self._set_state(call, previous, f"transfer refused: {response.status}")
            raise CallFailed(response.status, response.reason, session_id=call.id)

    async def wait_for_transfer(self, session_id: str, timeout: Seconds = 32.0) -> int:
        """Wait for the final status of a transfer we asked for (200 when it worked)."""
        call = self._call_or_ended(session_id)
        with anyio.move_on_after(_seconds(timeout)):
            await call.transfer_done.wait()
        if call.transfer_status is None:
            if call.state.is_final:
                raise CallFailed(0, call.end_reason or "ended", session_id=call.id)
            raise Timeout("no final transfer report", session_id=call.id)
        return call.transfer_status

    async def terminate_session(self, session_id: str) -> None:
        """Hang up: CANCEL before the answer, BYE after, a rejection for unanswered calls."""
        call = self._call(session_id)
        self._hang_up(call, "local hangup")
        with anyio.move_on_after(2.0):
            await call.ended.wait()

    def _hang_up(self, call: Call, reason: str) -> None:
        if call.state.is_final:
            return
        with self._gate:  # the call's events wait until its new state is recorded
            self._hang_up_now(call, reason)

    def _hang_up_now(self, call: Call, reason: str) -> None:
        endpoint = self.endpoint
        if call.direction == "incoming" and call.invite_ref is not None:
            self._reject(call, 480, "Temporarily Unavailable", reason)
        elif call.direction == "outgoing" and not call.answered.is_set():
            if call.leg is None:
                self._finish(call, CallState.Cancelled, reason)
                return
            call.cancel_requested = True
            self._set_state(call, CallState.Terminating, reason)
            try:
                endpoint.cancel(call.leg)
            except DialogUsageError:
                self._finish(call, CallState.Cancelled, reason)
        elif call.dialog_id is not None:
            self._set_state(call, CallState.Terminating, reason)
            call.end_reason = reason
            try:
                endpoint.bye(call.dialog_id)
            except DialogUsageError:
                self._finish(call, CallState.Terminated, reason)
        else:
            self._finish(call, CallState.Terminated, reason)

    def _confirmed(self, call: Call, did: DialogId, message: Request | Response) -> None:
        if call.cancel_requested and call.direction == "outgoing":
            # The answer crossed our CANCEL: the call is ours, so end it with a BYE.
            try:
                self.endpoint.bye(did)
            except DialogUsageError:
                pass
            self._finish(call, CallState.Cancelled, "cancelled")
            return
        super()._confirmed(call, did, message)

    def _on_call_gone(self, call: Call, reason: str) -> None:
        self._bridges.call_ended(call.id, reason)
        for pending in self._pending.values():
            if pending.call_id == call.id:
                pending.done.set()

    async def send_options(self, target: str, timeout: Seconds = 5.0) -> Response:
        """SIP ping: send OPTIONS to ``target`` outside any dialog; returns the response.

        Raises:
            InvalidState: ``target`` is not a SIP URI with an IP address.
            Timeout: no final response in time (RFC 3261 Timer F).
            TransportError: the message could not be sent.
        """
        try:
            uri = parse_uri(target)
        except SipParseError as exc:
            raise InvalidState(f"bad target URI {target!r}: {exc.reason}") from None
        request = make_request(
            "OPTIONS",
            uri,
            from_=f"<{self.local_uri}>;tag={new_tag(self._rng)}",
            to=f"<{uri}>",
            call_id=new_call_id(self._rng, self.local_sip_address[0]),
            cseq=1,
            via=None,
            contact=f"<{self.local_uri}>",
            headers=[("Accept", "application/sdp")],
        )
        peer = target_for(request, self.config.transport)
        if peer is None:
            raise InvalidState(f"no IP address to send to in {target!r} (no DNS here)")
        try:
            with anyio.fail_after(_seconds(timeout)):
                return await self.endpoint.transactions.request(request, peer)
        except TimeoutError:
            raise Timeout(f"no answer to OPTIONS from {target}") from None
        except TransactionTimeoutError:
            raise Timeout(f"no answer to OPTIONS from {target}") from None
        except TransportFailedError as exc:
            raise TransportError(f"cannot reach {target}: {exc}") from None

    # --- queries --------------------------------------------------------------------------

    async def get_session(self, session_id: str) -> CallSession:
        """The call's current snapshot (SessionNotFound once it ended)."""
        return self._call(session_id).snapshot()

    async def list_active_sessions(self) -> list[CallSession]:
        """Every call not yet ended."""
        return [c.snapshot() for c in self._calls.values() if not c.state.is_final]

    async def get_stats(self) -> SessionStats:
        """Coordinator-wide counters."""
        return SessionStats(
            active_sessions=len(self._calls),
            total_sessions=self.counters["total"],
            failed_sessions=self.counters["failed"],
            incoming_calls=self.counters["incoming"],
            outgoing_calls=self.counters["outgoing"],
            active_bridges=len(self._bridges.list()),
        )

    # --- bridges --------------------------------------------------------------------------

    async def create_bridge(self) -> BridgeId:
        """A new, empty bridge."""
        return self._bridges.create()

    async def add_session_to_bridge(self, bridge_id: str, session_id: str) -> None:
        """Connect an answered call's audio to the bridge."""
        call = self._established_call(session_id)
        self._bridges.add(bridge_id, call.media)

    async def remove_session_from_bridge(self, bridge_id: str, session_id: str) -> None:
        """Disconnect a call from the bridge."""
        self._bridges.remove(bridge_id, SessionId(str(session_id)), "removed")

    async def bridge_sessions(self, session_a: str, session_b: str) -> BridgeId:
        """Connect two answered calls' audio; returns the new bridge's id."""
        a, b = self._established_call(session_a), self._established_call(session_b)
        if a.id == b.id:
            raise InvalidState("cannot bridge a call with itself", session_id=a.id)
        if a.media.stream is None or b.media.stream is None:
            raise MediaError("both calls need an audio stream to be bridged")
        bridge_id = self._bridges.create()
        try:
            self._bridges.add(bridge_id, a.media)
            self._bridges.add(bridge_id, b.media)
        except SessionError:
            self._bridges.destroy(bridge_id)
            raise
        return bridge_id

    async def destroy_bridge(self, bridge_id: str) -> None:
        """Disconnect everyone and remove the bridge (the calls go on)."""
        self._bridges.destroy(bridge_id)

    async def list_bridges(self) -> list[BridgeInfo]:
        """Every bridge and its participants."""
        return self._bridges.list()

    async def get_bridge_info(self, bridge_id: str) -> BridgeInfo:
        """One bridge and its participants."""
        bridge = self._bridges.get(bridge_id)
        return BridgeInfo(bridge.id, tuple(bridge.members), bridge.mode)

    async def subscribe_to_bridge_events(self) -> EventSubscription[BridgeEventType]:
        """ParticipantAdded / ParticipantRemoved / BridgeDestroyed from now on."""
        return self._bridges.events.subscribe()


async def _either(a: LazyEvent, b: LazyEvent) -> None:
    async with anyio.create_task_group() as tg:

        async def first(event: LazyEvent) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(first, a)
        tg.start_soon(first, b)
