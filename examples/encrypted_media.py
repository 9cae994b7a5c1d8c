"""Encrypted media: SRTP keyed by SDES (RFC 4568), and what each mode does with the other.

Run: ``python examples/encrypted_media.py [asyncio|trio]``.

Alice requires SRTP; Bob accepts it when offered (optional). Their call is encrypted: the
SDP offers RTP/SAVP with two a=crypto lines, Bob answers one, and the tone Alice plays is
heard by Bob. Then Carol, who has SRTP off, is called by Alice: the offer is refused with
488 and the reason names SRTP. Real deployments send the SDP (and so the keys) over TLS:
``with_transport("tls")``; here everything stays on 127.0.0.1 over UDP, so rvoip logs (to
stderr) a warning once per endpoint that the keys travelled in clear.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    CallFailed,
    SessionCoordinator,
    SessionManagerBuilder,
    SrtpMode,
    tone_source,
)
from rvoip_session_core.testing import count_tone_frames


def endpoint(user: str, srtp: SrtpMode) -> SessionManagerBuilder:
    return (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_srtp(srtp)
    )


def uri(coordinator: SessionCoordinator, user: str) -> str:
    host, port = coordinator.local_sip_address
    return f"sip:{user}@{host}:{port}"


async def main() -> None:
    async with (
        await endpoint("alice", "required").build() as alice,
        await endpoint("bob", "optional").build() as bob,
        await endpoint("carol", "off").build() as carol,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri(bob, "bob"))
        await alice.wait_for_answer(call.id, 10)
        info = await alice.get_media_info(call.id)
        profile = "RTP/SAVP" if " RTP/SAVP " in (info.local_sdp or "") else "RTP/AVP"
        print(f"alice -> bob: {profile}, {info.codec}, SRTP suite {info.srtp_suite}")
        await alice.set_audio_source(call.id, tone_source(1000))
        (bob_leg,) = await bob.list_active_sessions()
        hits, frames = await count_tone_frames(bob, bob_leg.id, 1000, 0.6)
        print(f"bob hears alice's 1 kHz tone in {hits} of {frames} frames")
        stats = await alice.get_media_statistics(call.id)
        if stats is not None:
            print(f"alice: {stats.packets_sent} packets sent, {stats.srtp_failures} SRTP failures")
        await alice.terminate_session(call.id)

        refused = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri(carol, "carol"))
        try:
            await alice.wait_for_answer(refused.id, 10)
        except CallFailed as exc:
            print(f"alice -> carol: refused with {exc.status} ({exc.reason})")
    print("alice: done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
