"""Bridges: calls whose audio is connected, two-way or mixed N-way (mix-minus)."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import NDArray

from rvoip_media_core import FrameResampler, mix
from rvoip_session_core._errors import BridgeNotFound, InvalidState
from rvoip_session_core._events import (
    BridgeDestroyed,
    BridgeEventType,
    EventHub,
    ParticipantAdded,
    ParticipantRemoved,
)
from rvoip_session_core._media import CallMedia
from rvoip_session_core._types import BridgeId, SessionId

_DEPTH = 6  # frames buffered per participant: bounds the added delay to 120 ms


@attrs.frozen
class BridgeInfo:
    """A bridge and who is in it."""

    id: BridgeId
    participants: tuple[SessionId, ...]
    mode: str = "mix"
    """``relay`` (two calls, same codec: packets forwarded as they are) or ``mix``."""


@attrs.define(eq=False)
class _Member:
    media: CallMedia
    tap: Callable[[NDArray[np.int16]], None]
    # What each other member said and this one has not heard yet, per speaker.
    inbox: dict[SessionId, collections.deque[NDArray[np.int16]]] = attrs.field(factory=dict)
    # Per speaker whose call runs at another rate (PCMU 8 kHz heard on Opus 48 kHz...).
    resamplers: dict[SessionId, FrameResampler] = attrs.field(factory=dict)


@attrs.define(eq=False)
class Bridge:
    """One bridge: each member hears the sum of what the other members send."""

    id: BridgeId
    members: dict[SessionId, _Member] = attrs.field(factory=dict)
    mode: str = "mix"

    def choose_mode(self) -> None:
        """Relay packets between two calls with the same codec, else decode and mix."""
        medias = [m.media for m in self.members.values()]
        for media in medias:
            media.relay_audio_to(None)
            media.set_relaying(False)
        self.mode = "mix"
        if len(medias) != 2:
            return
        a, b = medias
        na, nb = a.negotiated, b.negotiated
        if na is None or nb is None or na.codec != nb.codec or na.ptime_ms != nb.ptime_ms:
            return
        a.relay_audio_to(b)
        b.relay_audio_to(a)
        a.set_relaying(True)
        b.set_relaying(True)
        self.mode = "relay"

    def tap_for(self, speaker: SessionId) -> Callable[[NDArray[np.int16]], None]:
        """The sink tap of ``speaker``: hands each received frame to every other member."""

        def tap(frame: NDArray[np.int16]) -> None:
            for sid, member in self.members.items():
                if sid != speaker:
                    queue = member.inbox.get(speaker)
                    if queue is None:
                        queue = member.inbox[speaker] = collections.deque(maxlen=_DEPTH)
                    queue.append(frame)

        return tap

    def feed_for(self, listener: SessionId) -> Callable[[int], NDArray[np.int16]]:
        """The source of ``listener``: one frame from each other member, mixed."""

        def feed(n: int) -> NDArray[np.int16]:
            member = self.members.get(listener)
            frames = []
            if member is not None:
                for speaker, queue in member.inbox.items():
                    if queue:
                        frame = queue.popleft()
                        if len(frame) != n:
                            frame = self._to_rate(member, speaker, frame, n)
                        frames.append(frame)
            if not frames:
                return np.zeros(n, dtype=np.int16)
            if len(frames) == 1:
                return frames[0]
            return mix(np.stack(frames))

        return feed

    def _to_rate(
        self, member: _Member, speaker: SessionId, frame: NDArray[np.int16], n: int
    ) -> NDArray[np.int16]:
        """A speaker's frame at the listener's rate (soxr), or stretched if rates are unknown."""
        source = self.members.get(speaker)
        in_rate = source.media.sample_rate if source is not None else 0
        out_rate = member.media.sample_rate
        if in_rate and len(frame) * out_rate == n * in_rate:
            resampler = member.resamplers.get(speaker)
            if resampler is None or (resampler.in_rate, resampler.out_rate) != (in_rate, out_rate):
                resampler = member.resamplers[speaker] = FrameResampler(in_rate, out_rate)
            out = resampler.process(frame)
            if len(out) == n:
                return out
        return np.resize(frame, n)


@attrs.define(eq=False)
class BridgeManager:
    """All bridges of a coordinator and their event hub."""

    events: EventHub[BridgeEventType] = attrs.field(factory=EventHub)
    _bridges: dict[BridgeId, Bridge] = attrs.field(init=False, factory=dict)
    _ids: itertools.count[int] = attrs.field(init=False, factory=lambda: itertools.count(1))
    prefix: str = "bridge"

    def create(self) -> BridgeId:
        """A new, empty bridge."""
        bid = BridgeId(f"{self.prefix}-{next(self._ids)}")
        self._bridges[bid] = Bridge(bid)
        return bid

    def get(self, bridge_id: str) -> Bridge:
        """The bridge with that id.

        Raises:
            BridgeNotFound: no such bridge.
        """
        bridge = self._bridges.get(BridgeId(str(bridge_id)))
        if bridge is None:
            raise BridgeNotFound(f"no such bridge: {bridge_id}")
        return bridge

    def bridge_of(self, session_id: SessionId) -> Bridge | None:
        """The bridge a call is in, if any."""
        for bridge in self._bridges.values():
            if session_id in bridge.members:
                return bridge
        return None

    def add(self, bridge_id: str, media: CallMedia) -> None:
        """Connect a call's audio to the bridge.

        Raises:
            InvalidState: the call is already in a bridge or has no media stream.
        """
        bridge = self.get(bridge_id)
        sid = media.session_id
        if self.bridge_of(sid) is not None:
            raise InvalidState("the call is already in a bridge", session_id=sid)
        if media.stream is None:
            raise InvalidState("the call has no audio stream yet", session_id=sid)
        member = _Member(media, tap=bridge.tap_for(sid))
        bridge.members[sid] = member
        media.add_frame_tap(member.tap)
        media.slot.bridge_feed = bridge.feed_for(sid)
        bridge.choose_mode()
        self.events.publish(ParticipantAdded(bridge.id, sid))

    def remove(self, bridge_id: str, session_id: SessionId, reason: str) -> None:
        """Disconnect a call from the bridge (its own source plays again).

        Raises:
            InvalidState: the call is not in that bridge.
        """
        bridge = self.get(bridge_id)
        member = bridge.members.pop(session_id, None)
        if member is None:
            raise InvalidState(f"the call is not in bridge {bridge_id}", session_id=session_id)
        if member.tap in member.media.frame_taps:
            member.media.frame_taps.remove(member.tap)
        member.media.slot.bridge_feed = None
        member.media.relay_audio_to(None)
        member.media.set_relaying(False)
        for other in bridge.members.values():
            other.inbox.pop(session_id, None)
        bridge.choose_mode()
        self.events.publish(ParticipantRemoved(bridge.id, session_id, reason))

    def destroy(self, bridge_id: str) -> list[SessionId]:
        """Remove every participant and the bridge; returns who was in it."""
        bridge = self.get(bridge_id)
        members = list(bridge.members)
        for sid in members:
            self.remove(bridge.id, sid, "bridge destroyed")
        del self._bridges[bridge.id]
        self.events.publish(BridgeDestroyed(bridge.id))
        return members

    def call_ended(self, session_id: SessionId, reason: str) -> None:
        """Drop an ended call from its bridge; an emptied bridge is destroyed."""
        bridge = self.bridge_of(session_id)
        if bridge is None:
            return
        self.remove(bridge.id, session_id, reason)
        if not bridge.members:
            self.destroy(bridge.id)

    def list(self) -> list[BridgeInfo]:
        """Every bridge with its participants."""
        return [BridgeInfo(b.id, tuple(b.members), b.mode) for b in self._bridges.values()]

    def close(self) -> None:
        """Destroy every bridge and end the event subscriptions."""
        for bid in list(self._bridges):
            self.destroy(bid)
        self.events.close()
