"""Call centre with a queue: calls wait (ringing) until an agent task takes them.

Run: ``python examples/call_center_queue.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    IncomingCall,
    QueueHandler,
    SessionCoordinator,
    SessionManagerBuilder,
)

CALLERS = ["sip:ann@127.0.0.1", "sip:ben@127.0.0.1", "sip:cid@127.0.0.1"]


async def process_queued_call(coordinator: SessionCoordinator, call: IncomingCall) -> None:
    session = await coordinator.accept_incoming_call(call)
    print(f"agent took {call.from_} -> {session.state.name}")


async def agent(coordinator: SessionCoordinator, queue: QueueHandler, served: list[str]) -> None:
    while len(served) < len(CALLERS):
        call = await queue.wait_for_call()
        await process_queued_call(coordinator, call)
        served.append(call.from_)


async def main() -> None:
    queue = QueueHandler(100)
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:support@127.0.0.1")
        .with_handler(queue)
        .build() as centre,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:callers@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .build() as phones,
    ):
        host, port = centre.local_sip_address
        calls = [
            await phones.create_outgoing_call(caller, f"sip:support@{host}:{port}")
            for caller in CALLERS
        ]
        served: list[str] = []
        with anyio.fail_after(10):
            await agent(centre, queue, served)
            for call in calls:
                await phones.wait_for_answer(call.id, 5)
        print(f"served in order: {served}")
        print(f"still queued: {queue.queue_size()}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
