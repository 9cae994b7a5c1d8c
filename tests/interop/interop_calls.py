"""Handlers and monitors the interop tests attach to a coordinator that SIPp talks to."""

from __future__ import annotations

import anyio
import anyio.abc
import attrs

from rvoip_media_core import detect_tone
from rvoip_session_core import (
    CallDecision,
    CallHandler,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    SessionCoordinator,
    SessionError,
    SessionId,
)
from rvoip_session_core.testing import wait_until


class Recorder(CallHandler):
    """Answers with a fixed decision and records every hook the coordinator calls."""

    def __init__(self, decision: Decision | None = None) -> None:
        self.decision: Decision = decision if decision is not None else CallDecision.Accept(None)
        self.incoming: list[IncomingCall] = []
        self.established: list[CallSession] = []
        self.ended: list[tuple[CallSession, str]] = []
        self.dtmf: dict[SessionId, list[str]] = {}
        self.transfers: list[tuple[SessionId, str]] = []
        self.all_ended = anyio.Event()
        self.expected_calls = 0

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        self.incoming.append(call)
        return self.decision

    async def on_call_established(
        self, call: CallSession, local_sdp: str | None, remote_sdp: str | None
    ) -> None:
        self.established.append(call)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        self.ended.append((call, reason))
        if self.expected_calls and len(self.ended) >= self.expected_calls:
            self.all_ended.set()

    async def on_dtmf(self, session_id: SessionId, digit: str) -> None:
        self.dtmf.setdefault(session_id, []).append(digit)

    async def on_incoming_transfer_request(
        self, session_id: SessionId, target: str, referred_by: str | None
    ) -> bool:
        self.transfers.append((session_id, target))
        return True

    def digits(self, session_id: SessionId) -> str:
        """The digits received on one call, in order."""
        return "".join(self.dtmf.get(session_id, []))

    def reasons(self) -> list[str]:
        """Why each ended call ended, in order."""
        return [reason for _, reason in self.ended]


@attrs.frozen
class CallMedia:
    """What a monitor saw of one call's received audio."""

    packets_received: int
    codec: str | None
    tone_frames: int
    frames: int


@attrs.define(eq=False)
class MediaMonitor:
    """Samples each active call's media statistics and counts received frames with a tone.

    The coordinator forgets a call's statistics when it ends, so they are read while the
    call is up: every ``interval`` seconds for every active session.
    """

    coordinator: SessionCoordinator
    tone_hz: float = 1000.0
    interval: float = 0.05
    packets: dict[SessionId, int] = attrs.field(factory=dict)
    codecs: dict[SessionId, str | None] = attrs.field(factory=dict)
    tones: dict[SessionId, list[int]] = attrs.field(factory=dict)

    async def run(self, tg: anyio.abc.TaskGroup) -> None:
        """Poll until cancelled; start a frame listener for each new session."""
        while True:
            for session in await self.coordinator.list_active_sessions():
                sid = session.id
                try:
                    stats = await self.coordinator.get_media_statistics(sid)
                except SessionError:
                    continue
                if stats is None:
                    continue
                if sid not in self.tones:
                    self.tones[sid] = [0, 0]
                    tg.start_soon(self._listen, sid)
                self.packets[sid] = max(self.packets.get(sid, 0), stats.packets_received)
                self.codecs[sid] = stats.codec
            await anyio.sleep(self.interval)

    async def _listen(self, sid: SessionId) -> None:
        try:
            subscription = await self.coordinator.subscribe_to_audio_frames(sid)
        except SessionError:
            return
        counts = self.tones[sid]
        async for frame in subscription:
            counts[1] += 1
            if detect_tone(frame.samples, self.tone_hz):
                counts[0] += 1

    def media(self, sid: SessionId) -> CallMedia:
        """What was seen of call ``sid``."""
        hits, total = self.tones.get(sid, [0, 0])
        return CallMedia(self.packets.get(sid, 0), self.codecs.get(sid), hits, total)


async def only_active_call(coordinator: SessionCoordinator, timeout: float = 10.0) -> str:
    """The id of the one active call of ``coordinator``, once there is exactly one."""
    ids: list[str] = []

    async def one() -> bool:
        sessions = await coordinator.list_active_sessions()
        ids[:] = [s.id for s in sessions if s.state is CallState.Active]
        return len(ids) == 1

    assert await wait_until(one, timeout=timeout)
    return ids[0]
