"""``rvoip register URI --user NAME --password PW``: keep a registration from a shell.

Registers, prints the binding each time it is registered again (refresh) or fails, and
unregisters when stopped (Ctrl-C, SIGTERM, or after the first result with ``--once``).
The password may come from ``RVOIP_PASSWORD``; it is never printed.
"""

from __future__ import annotations

import argparse

import anyio

from rvoip_session_core._cli_accounts import PASSWORD_ENV, describe_registration, password_of
from rvoip_session_core._cli_commands import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    _builder,
    _cancel_on_signal,
    _network,
    _signal_exit,
    add_loop_option,
    fail,
    run_tapped,
)
from rvoip_session_core._cli_log import WireTap, add_log_options
from rvoip_session_core._errors import ConfigurationError, TransportError
from rvoip_session_core._events import RegistrationState, RegistrationStateChanged
from rvoip_sip_core import SipParseError, parse_uri

__all__ = ["add_register_command", "run_register"]


def add_register_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``register`` sub-command."""
    register = sub.add_parser(
        "register",
        help="register with a registrar and keep the binding until stopped",
        epilog=EXIT_CODES,
    )
    register.add_argument("uri", help="the registrar, e.g. sip:pbx.example.com")
    register.add_argument("--user", required=True, help="digest user name (and AOR user)")
    register.add_argument(
        "--password", default=None, help=f"digest password (default: ${PASSWORD_ENV})"
    )
    register.add_argument("--realm", default=None, help="realm of the credentials (default: any)")
    register.add_argument("--aor", default=None, help="address of record (default: user@host)")
    register.add_argument("--expires", type=int, default=3600, help="expires asked for (s)")
    register.add_argument(
        "--once", action="store_true", help="exit after the first result (unregistering)"
    )
    _network(register, default_port=0)
    add_loop_option(register)
    add_log_options(register)


def run_register(args: argparse.Namespace) -> int:
    """``rvoip register``: 0 when stopped while registered (or ``--once`` succeeded)."""
    try:
        parse_uri(args.uri)
    except SipParseError as exc:
        return fail(f"bad URI {args.uri!r}: {exc.reason}", EXIT_USAGE)
    return run_tapped(_register_tapped, args)


async def _register_tapped(args: argparse.Namespace, wire: WireTap) -> int:
    try:
        password = password_of(args)
        builder = _builder(args, args.user).with_registration(
            args.uri,
            username=args.user,
            password=password,
            expires=args.expires,
            aor=args.aor,
            realm=args.realm,
        )
        coordinator = await builder.build()
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    # Subscribed before the start: the first REGISTER may be answered before any await.
    events = coordinator.events()
    wire.attach(coordinator)  # before the start too: the first REGISTER goes in the log
    try:
        await coordinator.start()
    except TransportError as exc:
        return fail(str(exc), EXIT_NETWORK)
    caught: list[int] = []
    result = EXIT_OK
    async with coordinator, anyio.create_task_group() as tg:
        await tg.start(_cancel_on_signal, tg.cancel_scope, caught)
        async for event in events:
            if not isinstance(event, RegistrationStateChanged):
                continue
            status = event.status
            if status.state in (RegistrationState.Registered, RegistrationState.Failed):
                print(describe_registration(status), flush=True)
                if args.once:
                    ok = status.state is RegistrationState.Registered
                    result = EXIT_OK if ok else EXIT_FAILED
                    break
        tg.cancel_scope.cancel()
    # Leaving ``async with coordinator`` unregistered (REGISTER with Expires 0).
    print("unregistered", flush=True)
    return _signal_exit(caught) if caught else result
