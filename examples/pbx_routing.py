"""A small PBX: softphones register to it (digest) and call each other through it.

Called numbers matching ``*`` patterns are redirected (302); every other call goes to the
phones registered for the called user (``CallDecision.Route``: all of them ring, the first
to answer is bridged to the caller). Two phones, alice and bob, register with digest auth,
then alice calls the pattern routes and bob.

Run: ``python examples/pbx_routing.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys

import anyio

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallDecision,
    CallFailed,
    RegistrationState,
    RoutingHandler,
    SessionCoordinator,
    SessionManagerBuilder,
)

PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}


async def registered(phone: SessionCoordinator) -> None:
    """Wait until the phone's registration is accepted."""
    with anyio.fail_after(5):
        while not any(s.state is RegistrationState.Registered for s in phone.registration_status()):
            await anyio.sleep(0.05)


def phone(user: str, registrar: str) -> SessionManagerBuilder:
    """A softphone that registers ``user`` at ``registrar`` and answers every call."""
    return (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address(f"sip:{user}@127.0.0.1")
        .with_handler(AutoAnswerHandler())
        .with_registration(registrar, username=user, password=PASSWORDS[user])
        .with_redirects(False)  # show the PBX's 302 instead of following it off the machine
    )


async def main() -> None:
    router = RoutingHandler(default=CallDecision.Route())  # unmatched: registered phones
    router.add_route("sip:support@*", "sip:queue@support.local")
    router.add_route("sip:sales@*", "sip:queue@sales.local")
    router.add_route("sip:+1800*", "sip:tollfree@gateway.com")
    pbx_builder = (
        SessionManagerBuilder()
        .with_sip_port(0)
        .with_local_address("sip:pbx@127.0.0.1")
        .with_handler(router)
        # Callers and registering phones prove who they are (401, then digest).
        .with_authenticator("pbx.local", PASSWORDS)
        # REGISTER is answered; bindings for sip:USER@127.0.0.1 are kept.
        .with_registrar(domain="127.0.0.1")
    )
    async with await pbx_builder.build() as pbx:
        host, port = pbx.local_sip_address
        registrar = f"sip:{host}:{port}"
        async with (
            await phone("alice", registrar).build() as alice,
            await phone("bob", registrar).build() as bob,
        ):
            await registered(alice)
            await registered(bob)
            for binding in pbx.bindings("sip:bob@127.0.0.1"):
                print(f"bob registered: expires in {binding.expires_in(pbx.call_layer.now())} s")
            for user in ("support", "sales", "+18005551234", "nobody"):
                call = await alice.create_outgoing_call(
                    "sip:alice@127.0.0.1", f"sip:{user}@{host}:{port}"
                )
                try:
                    await alice.wait_for_answer(call.id, 5)
                except CallFailed as exc:
                    print(f"{user:>14}: {exc.status} {exc.reason}")
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", f"sip:bob@{host}:{port}")
            await alice.wait_for_answer(call.id, 5)
            print(f"alice -> bob: {(await alice.get_session(call.id)).state.name}")
            (bob_call,) = await bob.list_active_sessions()
            print(f"bob's phone rang for {bob_call.from_}")
            with anyio.fail_after(5):
                while True:
                    stats = await bob.get_media_statistics(bob_call.id)
                    if stats is not None and stats.packets_received >= 10:
                        break
                    await anyio.sleep(0.05)
            print("bob: RTP flows on the leg the PBX bridged to alice")
            await alice.terminate_session(call.id)
            with anyio.fail_after(5):
                while await bob.list_active_sessions():
                    await anyio.sleep(0.05)
            print("bob: call ended")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
