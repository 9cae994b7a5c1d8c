"""Pattern 2, deferred decision: calls ring while the application looks the caller up.

The handler parks calls (they ring with 180); a processing loop authorizes each one
asynchronously, then answers with a generated SDP answer or rejects.
Run: ``python examples/pattern2_deferred.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallDecision,
    CallFailed,
    CallHandler,
    CallSession,
    CallState,
    Decision,
    IncomingCall,
    MediaControl,
    SessionControl,
    SessionCoordinator,
    SessionManagerBuilder,
)


class DeferHandler(CallHandler):
    def __init__(self) -> None:
        self.pending_calls: list[IncomingCall] = []

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        # Defer for async processing.
        self.pending_calls.append(call)
        return CallDecision.Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"record: call {call.id} ended ({reason})")


async def lookup_user(uri: str) -> bool:
    await anyio.sleep(0.05)  # a database or directory lookup
    return uri.startswith("sip:alice@")


async def process_deferred_calls(coordinator: SessionCoordinator, handler: DeferHandler) -> int:
    done = 0
    while handler.pending_calls:
        call = handler.pending_calls.pop()
        if await lookup_user(call.from_):
            assert call.sdp is not None
            sdp_answer = await MediaControl.generate_sdp_answer(coordinator, call.id, call.sdp)
            await SessionControl.accept_incoming_call(coordinator, call, sdp_answer)
            print(f"accepted {call.from_}")
        else:
            await SessionControl.reject_incoming_call(coordinator, call, "Not authorized")
            print(f"rejected {call.from_}")
        done += 1
    return done


async def main() -> None:
    handler = DeferHandler()
    async with (
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:desk@127.0.0.1")
        .with_handler(handler)
        .build() as desk,
        await SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:phone@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .build() as phone,
    ):
        host, port = desk.local_sip_address
        target = f"sip:desk@{host}:{port}"
        alice = await phone.create_outgoing_call("sip:alice@127.0.0.1", target)
        eve = await phone.create_outgoing_call("sip:eve@127.0.0.1", target)
        with anyio.fail_after(5):
            while (await phone.get_session(alice.id)).state is not CallState.Ringing:
                await anyio.sleep(0.01)
            while len(handler.pending_calls) < 2:
                await anyio.sleep(0.01)
        print("both calls ringing (180) while the desk decides")
        await process_deferred_calls(desk, handler)
        await phone.wait_for_answer(alice.id, 5)
        print("alice: connected")
        try:
            await phone.wait_for_answer(eve.id, 5)
        except CallFailed as exc:
            print(f"eve: {exc.status} {exc.reason}")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
