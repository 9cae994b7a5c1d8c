"""The ``rvoip`` command line: ``demo``, ``call``, ``answer``, ``options``, ``register``, ``phone``.

Each command's ``--help`` ends with the exit codes (see ``_cli_commands.EXIT_CODES``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rvoip_session_core._cli_commands import (
    EXIT_CODES,
    EXIT_USAGE,
    add_commands,
    add_loop_option,
    fail,
    missing_loop,
    resolve_loop,
    run_answer,
    run_call,
    run_options,
)
from rvoip_session_core._cli_phone import add_phone_command, run_phone_command
from rvoip_session_core._cli_register import add_register_command, run_register


def _demo(args: argparse.Namespace) -> int:
    """Run the three-party demo; 0 only if every step was verified."""
    import anyio

    from rvoip_session_core._demo import format_quality, run_demo

    print("rvoip demo: alice, bob and carol on 127.0.0.1 (UDP, G.711, RFC 4733)")
    backend, options = resolve_loop(args.loop)
    report = anyio.run(run_demo, backend=backend, backend_options=options)
    if not args.no_ladder:
        print("\nSIP ladder (every message sent, times in seconds):")
        print(report.ladder)
    print("\nQuality per leg (E-model, ITU-T G.107):")
    print(format_quality(report.legs))
    passed = sum(s.ok for s in report.steps)
    verdict = "all verified" if report.ok else "NOT all verified"
    print(f"\n{passed}/{len(report.steps)} steps passed: {verdict}")
    return 0 if report.ok else 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rvoip",
        description="rvoip: SIP calls with RTP audio, from Python.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a self-contained three-party call on 127.0.0.1")
    demo.add_argument("--no-ladder", action="store_true", help="do not print the SIP ladder")
    add_loop_option(demo)
    add_commands(sub)
    add_register_command(sub)
    add_phone_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rvoip`` command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The process exit status (0 on success).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    problem = missing_loop(getattr(args, "loop", None))
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    if args.command == "demo":
        return _demo(args)
    if args.command == "call":
        return run_call(args)
    if args.command == "answer":
        if args.reject and not 400 <= args.reject <= 699:
            parser.error("--reject needs a 4xx-6xx status")
        return run_answer(args)
    if args.command == "options":
        return run_options(args)
    if args.command == "register":
        return run_register(args)
    if args.command == "phone":
        return run_phone_command(args)
    parser.print_help()
    return 2
