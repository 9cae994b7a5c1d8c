"""Bridge management and monitoring: connect a customer to an agent, watch the events.

A customer and an agent both call the switchboard, which bridges the two calls (their
audio is relayed) and prints the bridge events until the bridge is destroyed.
Run: ``python examples/bridge_monitoring.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    BridgeEvent,
    CallState,
    SessionCoordinator,
    SessionManagerBuilder,
    tone_source,
)
from rvoip_session_core.testing import count_tone_frames


def endpoint(user: str) -> SessionManagerBuilder:
    return (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_handler(AutoAnswerHandler())
    )


async def answered_legs(switchboard: SessionCoordinator) -> dict[str, str]:
    with anyio.fail_after(5):
        while True:
            legs = await switchboard.list_active_sessions()
            if len(legs) == 2 and all(s.state is CallState.Active for s in legs):
                return {s.from_: s.id for s in legs}
            await anyio.sleep(0.01)


async def monitor(switchboard: SessionCoordinator, ready: anyio.Event) -> None:
    events = await switchboard.subscribe_to_bridge_events()
    ready.set()
    async for event in events:
        match event:
            case BridgeEvent.ParticipantAdded(bridge_id=bridge_id, session_id=session_id):
                print(f"Session {session_id} joined bridge {bridge_id}")
            case BridgeEvent.ParticipantRemoved(bridge_id=b, session_id=s, reason=reason):
                print(f"Session {s} left bridge {b}: {reason}")
            case BridgeEvent.BridgeDestroyed(bridge_id=bridge_id):
                print(f"Bridge {bridge_id} ended")
                break


async def main() -> None:
    async with (
        await endpoint("switchboard").build() as switchboard,
        await endpoint("customer").build() as customer,
        await endpoint("agent").build() as agent,
        anyio.create_task_group() as tg,
    ):
        ready = anyio.Event()
        tg.start_soon(monitor, switchboard, ready)
        await ready.wait()
        host, port = switchboard.local_sip_address
        target = f"sip:switchboard@{host}:{port}"
        c = await customer.create_outgoing_call("sip:customer@127.0.0.1", target)
        a = await agent.create_outgoing_call("sip:agent@127.0.0.1", target)
        await customer.wait_for_answer(c.id, 5)
        await agent.wait_for_answer(a.id, 5)
        legs = await answered_legs(switchboard)
        bridge_id = await switchboard.bridge_sessions(
            legs["sip:customer@127.0.0.1"], legs["sip:agent@127.0.0.1"]
        )
        await customer.set_audio_source(c.id, tone_source(700))
        await anyio.sleep(0.2)
        hits, total = await count_tone_frames(agent, a.id, 700, 0.5)
        print(f"agent hears the customer's 700 Hz tone in {hits}/{total} frames")
        await customer.terminate_session(c.id)  # the customer hangs up: leaves the bridge
        await anyio.sleep(0.2)
        await switchboard.destroy_bridge(bridge_id)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
