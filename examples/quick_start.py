"""Quick Start (the seed README's first example) against a loopback peer.

Alice's coordinator calls Bob's (an auto-answering peer in the same process), waits for
the answer and shuts down. Run: ``python examples/quick_start.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import anyio

from rvoip_session_core.api import AutoAnswerHandler, SessionControl, SessionManagerBuilder


async def main() -> None:
    # The peer: Bob answers every call.
    bob = await (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:bob@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .build()
    )
    await bob.start()
    host, port = bob.local_sip_address

    # Build and start a session coordinator (port 0: any free port).
    coordinator = await (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:alice@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .build()
    )
    await SessionControl.start(coordinator)

    # Make a call; the SDP offer is generated automatically.
    session = await SessionControl.create_outgoing_call(
        coordinator, "sip:alice@127.0.0.1", f"sip:bob@{host}:{port}", None
    )
    print(f"Call initiated: {session.id}")

    await SessionControl.wait_for_answer(coordinator, session.id, timedelta(seconds=30))
    print("Call connected!")

    await SessionControl.terminate_session(coordinator, session.id)
    await SessionControl.stop(coordinator)
    await bob.stop()
    print("Clean shutdown")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
