"""Pattern 1, immediate decision: the handler accepts or rejects at once.

Two callers ring the same endpoint; only the authorized one gets through.
Run: ``python examples/pattern1_immediate.py [asyncio|trio]``.
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
    Decision,
    IncomingCall,
    SessionManagerBuilder,
)

AUTHORIZED = {"sip:alice@127.0.0.1"}


def is_authorized(caller: str) -> bool:
    return caller in AUTHORIZED


class MyHandler(CallHandler):
    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        # Make the decision immediately.
        if is_authorized(call.from_):
            return CallDecision.Accept(None)  # the SDP answer is generated
        return CallDecision.Reject("Unauthorized", 403)

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        print(f"Call {call.id} ended: {reason}")


async def main() -> None:
    server = SessionManagerBuilder().with_sip_port(0).with_local_address("sip:pbx@127.0.0.1")
    caller = SessionManagerBuilder().with_sip_port(0).with_local_address("sip:any@127.0.0.1")
    async with (
        await server.with_handler(MyHandler()).build() as pbx,
        await caller.with_handler(AutoAnswerHandler()).build() as phone,
    ):
        host, port = pbx.local_sip_address
        target = f"sip:pbx@{host}:{port}"
        good = await phone.create_outgoing_call("sip:alice@127.0.0.1", target)
        await phone.wait_for_answer(good.id, 5)
        print("alice: connected")
        bad = await phone.create_outgoing_call("sip:mallory@127.0.0.1", target)
        try:
            await phone.wait_for_answer(bad.id, 5)
        except CallFailed as exc:
            print(f"mallory: rejected with {exc.status} {exc.reason}")
        await phone.terminate_session(good.id)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
