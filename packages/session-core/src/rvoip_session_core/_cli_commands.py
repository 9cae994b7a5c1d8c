"""``rvoip call``, ``rvoip answer`` and ``rvoip options``: one-call tools for scripts.

Exit codes (:data:`EXIT_CODES`, printed by ``--help``): 0 success, 1 the call failed (the
peer refused it, with the SIP status printed, or a timeline action failed), 2 usage error
(bad URI, bad flag or ``--at`` item, unwritable ``--sip-log``), 3 local network error
(port in use, cannot bind), 4 no answer or unreachable peer (timeout, 408, 503),
130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM (128 + signal number, as shells
report it; active calls are hung up first).

Event loop: uvloop when it is installed, else the stdlib asyncio loop; ``--loop`` picks one.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.abc
import attrs

from rvoip_media_core import FrameResampler, WavSink
from rvoip_session_core._cli_accounts import (
    add_account_options,
    apply_accounts,
    describe_registration,
)
from rvoip_session_core._cli_log import WireTap, add_log_options
from rvoip_session_core._cli_timeline import (
    CallScript,
    RingThenDecide,
    TimedAction,
    TimelineError,
    add_timeline_options,
    answer_timing,
    ends_call,
    parse_timeline,
)
from rvoip_session_core._config import SessionManagerBuilder
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._drain import drain_on_signal
from rvoip_session_core._errors import (
    CallFailed,
    ConfigurationError,
    MediaError,
    SessionError,
    Timeout,
    TransportError,
)
from rvoip_session_core._events import (
    CallEnded,
    CallEstablished,
    MediaQualityReport,
    RegistrationStateChanged,
)
from rvoip_session_core._handlers import AutoAnswerHandler, CallHandler
from rvoip_session_core._media import AudioSourceSpec, tone_source
from rvoip_session_core._offer_answer import SRTP_MODES
from rvoip_session_core._types import Accept, Decision, IncomingCall, Reject
from rvoip_sip_core import SipParseError, default_reason, parse_uri

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NETWORK, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM
EXIT_CODES = (
    "exit codes: 0 ok; 1 call failed (the SIP status is printed) or a --at action failed; "
    "2 usage error (bad URI, flag or --at item); 3 network error (cannot bind, port in "
    "use); 4 no answer, unreachable or timed out (408/503); 130/143 stopped by "
    "SIGINT/SIGTERM (calls hung up first). Errors are one line on stderr, 'rvoip: ...'."
)
LOOPS = ("asyncio", "uvloop", "trio")


def resolve_loop(choice: str | None) -> tuple[str, dict[str, Any]]:
    """The anyio backend and options for ``--loop`` (None: uvloop if installed, else asyncio)."""
    if choice == "trio":
        return "trio", {}
    if choice in (None, "uvloop") and importlib.util.find_spec("uvloop") is not None:
        return "asyncio", {"use_uvloop": True}
    return "asyncio", {}


def missing_loop(choice: str | None) -> str | None:
    """A one-line error when the ``--loop`` choice cannot run here, else None.

    trio is an optional dependency: without it anyio's trio backend fails deep inside
    ``anyio.run`` with an ImportError traceback. uvloop needs no check (its absence
    falls back to asyncio, see :func:`resolve_loop`).
    """
    if choice == "trio" and importlib.util.find_spec("trio") is None:
        return "--loop trio needs trio, which is not installed: pip install trio"
    return None


def run_async(
    func: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run a command's coroutine on the event loop chosen by ``--loop``."""
    backend, options = resolve_loop(getattr(args, "loop", None))
    result: int = anyio.run(func, args, backend=backend, backend_options=options)
    return result


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """``--loop asyncio|uvloop|trio`` (``--backend`` is kept as its old spelling)."""
    parser.add_argument(
        "--loop",
        "--backend",
        dest="loop",
        choices=LOOPS,
        default=None,
        help="event loop (default: uvloop when installed, else asyncio)",
    )


async def _cancel_on_signal(
    scope: anyio.CancelScope,
    caught: list[int],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Cancel ``scope`` on SIGINT/SIGTERM so the command hangs up and exits cleanly."""
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                caught.append(int(signum))
                scope.cancel()
                return
    except NotImplementedError:  # e.g. asyncio on Windows: Ctrl-C raises KeyboardInterrupt
        task_status.started()


def _signal_exit(caught: list[int]) -> int:
    signum = caught[0]
    name = signal.Signals(signum).name
    print(f"rvoip: stopped by {name}", file=sys.stderr, flush=True)
    return 128 + signum


def fail(message: str, code: int) -> int:
    """Print a one-line error and return the exit code."""
    print(f"rvoip: {message}", file=sys.stderr)
    return code


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the call, answer and options sub-commands."""
    call = sub.add_parser(
        "call", help="call a SIP URI, play audio, send DTMF, hang up", epilog=EXIT_CODES
    )
    call.add_argument("uri", help="whom to call, e.g. sip:bob@127.0.0.1:5070")
    call.add_argument("--from", dest="from_", default=None, help="our From URI")
    call.add_argument("--duration", type=float, default=3.0, help="seconds to stay connected")
    call.add_argument("--dtmf", default="", help="DTMF digits to send after the answer")
    call.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for answer")
    _common(call, default_port=0)
    add_account_options(call)
    add_timeline_options(call)
    add_log_options(call)
    answer = sub.add_parser("answer", help="wait for calls and answer them", epilog=EXIT_CODES)
    answer.add_argument("--auto", action="store_true", help="answer every call (default)")
    answer.add_argument("--quiet", action="store_true", help="no per-call lines (for load tests)")
    answer.add_argument("--max-calls", type=int, default=0, help="exit after N calls (0: never)")
    answer.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        help="answer new calls 503 (Retry-After) while N calls are up (default 1000; 0: no cap)",
    )
    answer.add_argument(
        "--overload-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="answer new calls 503 while the event loop lags more than this (e.g. 0.1; "
        "default 0: not watched)",
    )
    answer.add_argument(
        "--reject", type=int, default=0, metavar="STATUS", help="refuse every call with STATUS"
    )
    answer.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        metavar="S",
        help="on SIGTERM/SIGINT answer new calls 503 and let the calls up run up to S s "
        "before hanging up (a second signal stops at once; default 0: hang up at once)",
    )
    _common(answer, default_port=5060)
    add_account_options(answer, register=True)
    add_timeline_options(answer, answering=True)
    add_log_options(answer)
    options = sub.add_parser(
        "options", help="SIP ping: send OPTIONS and print the answer", epilog=EXIT_CODES
    )
    options.add_argument("uri", help="whom to ping, e.g. sip:127.0.0.1:5060")
    options.add_argument("--timeout", type=float, default=5.0, help="seconds to wait")
    _network(options, default_port=0)
    add_loop_option(options)
    add_log_options(options)


def _common(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    _network(parser, default_port=default_port)
    parser.add_argument(
        "--play",
        default=None,
        help="audio file to send (WAV of any rate/width/channels, FLAC, Ogg; resampled)",
    )
    parser.add_argument("--tone", type=float, default=None, help="send a tone of this many Hz")
    parser.add_argument("--record", default=None, help="write the call's audio to this WAV")
    parser.add_argument(
        "--record-mode",
        choices=("received", "stereo", "mix"),
        default="received",
        help="what --record writes: received (what we hear, 8 kHz mono; the default), "
        "stereo (ours left, theirs right, at the call's rate) or mix (both, mono)",
    )
    parser.add_argument(
        "--codecs",
        default=None,
        help="codecs to offer/accept, best first, e.g. opus,g722,pcmu (default: pcmu,pcma)",
    )
    parser.add_argument(
        "--rtp-latch",
        choices=("strict", "learn", "off"),
        default="strict",
        help="where RTP may come from: strict (learn during probation, then lock), learn, off",
    )
    parser.add_argument(
        "--srtp",
        choices=SRTP_MODES,
        default="off",
        help="encrypt media with SRTP (SDES keys in SDP, RFC 4568): off, optional (offer "
        "RTP/AVP with a=crypto, fall back to RTP), required (offer RTP/SAVP, refuse calls "
        "without SRTP); use --transport tls, the keys travel in the SDP",
    )
    parser.add_argument(
        "--no-overload-control",
        action="store_true",
        help="never shed new requests with 503 when the receive queue backs up",
    )
    add_loop_option(parser)


def _network(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    """Local address, transport and TLS files: the options every command shares."""
    parser.add_argument("--port", type=int, default=default_port, help="local SIP port (0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="local IP address to bind")
    parser.add_argument(
        "--transport",
        choices=("udp", "tcp", "tls"),
        default="udp",
        help="preferred transport, for targets naming none (default: udp)",
    )
    parser.add_argument(
        "--transports",
        default="udp,tcp,tls",
        help="transports served at once, comma separated (default: udp,tcp,tls; TLS "
        "listens only with --cert, else it is a client)",
    )
    parser.add_argument(
        "--tls-port",
        type=int,
        default=None,
        help="TLS port (default: 5061 beside 5060, else the SIP port + 1)",
    )
    parser.add_argument(
        "--cert", default=None, help="TLS: our PEM certificate (chain); listen for TLS"
    )
    parser.add_argument("--key", default=None, help="TLS: its PEM key (if not in --cert)")
    parser.add_argument("--ca", default=None, help="TLS: PEM CAs to verify peers (default: system)")
    parser.add_argument(
        "--insecure", action="store_true", help="TLS: do not verify the peer (test setups only)"
    )


def _builder(args: argparse.Namespace, user: str) -> SessionManagerBuilder:
    builder = (
        SessionManagerBuilder()
        .with_local_address(f"sip:{user}@{args.host}")
        .with_sip_port(args.port)
        .with_transport(args.transport)
        .with_quality_interval(2.0)
        .with_rtp_latching(getattr(args, "rtp_latch", "strict"))
        .with_srtp(getattr(args, "srtp", "off"))
    )
    if getattr(args, "no_overload_control", False):
        builder = builder.with_overload_control(None)
    codecs = getattr(args, "codecs", None)
    if codecs:
        builder = builder.with_codecs([c.strip() for c in str(codecs).split(",") if c.strip()])
    builder = apply_accounts(builder, args)  # --user/--password/--register, if given
    names = [name.strip() for name in str(args.transports).split(",") if name.strip()]
    if args.transport not in [name.lower() for name in names]:
        names.append(args.transport)  # the preferred transport is always served
    builder = builder.with_transports(*names)
    if args.tls_port is not None:
        builder = builder.with_tls_port(args.tls_port)
    # A TLS client needs no certificate of its own (it verifies the server with the system
    # CAs or --ca); --cert makes us listen for TLS and serves mutual TLS.
    if args.cert is not None or args.ca is not None or args.insecure:
        builder = builder.with_tls(args.cert, args.key, cafile=args.ca, verify=not args.insecure)
    return builder


def _source(args: argparse.Namespace) -> AudioSourceSpec:
    if args.play:
        return str(args.play)
    if args.tone:
        return tone_source(args.tone)
    return None


async def _start_recording(
    coordinator: SessionCoordinator,
    session_id: str,
    args: argparse.Namespace,
    tg: anyio.abc.TaskGroup,
) -> None:
    """``--record FILE`` by ``--record-mode``: two-sided in the coordinator, or received only."""
    mode = getattr(args, "record_mode", "received")
    if mode == "received":
        tg.start_soon(_record, coordinator, session_id, args.record)
    else:
        # The file is complete when the call ends (its media closes the recorder).
        await coordinator.start_recording(
            session_id, args.record, mode="stereo" if mode == "stereo" else "mix"
        )


async def _record(coordinator: SessionCoordinator, session_id: str, path: str) -> None:
    try:
        subscription = await coordinator.subscribe_to_audio_frames(session_id)
    except SessionError:
        return
    resampler: FrameResampler | None = None
    with WavSink(path) as sink:
        async for frame in subscription:
            samples = frame.samples
            if frame.sample_rate != 8000:  # the WAV is 8 kHz: HD calls are resampled
                if resampler is None or resampler.in_rate != frame.sample_rate:
                    resampler = FrameResampler(frame.sample_rate, 8000)
                samples = resampler.process(samples)
            sink.write(samples)


def _quality_line(stats: object) -> str:
    q = getattr(stats, "quality_metrics", None)
    if q is None:
        return "no media statistics"
    mos = "-" if q.mos_score is None else f"{q.mos_score:.2f}"
    codec = getattr(stats, "codec", None) or "-"
    return (
        f"{codec} MOS {mos} ({getattr(q, 'model', 'G.107')}), "
        f"loss {q.packet_loss_percent:.1f}%, jitter {q.jitter_ms:.1f} ms, "
        f"packets sent {getattr(stats, 'packets_sent', 0)} "
        f"received {getattr(stats, 'packets_received', 0)}"
    )


def run_call(args: argparse.Namespace) -> int:
    """``rvoip call``."""
    try:
        parse_uri(args.uri)
    except SipParseError as exc:
        return fail(f"bad URI {args.uri!r}: {exc.reason}", EXIT_USAGE)
    try:
        args.timeline = parse_timeline(args.at)
    except TimelineError as exc:
        return fail(str(exc), EXIT_USAGE)
    return run_tapped(_call_tapped, args)


def open_wire_tap(args: argparse.Namespace) -> WireTap | str:
    """The ``--ladder``/``--sip-log`` tap with its file open, or a one-line error."""
    wire = WireTap(args)
    try:
        wire.open()
    except OSError as exc:
        return f"cannot write --sip-log {args.sip_log!r}: {exc.strerror or exc}"
    return wire


TappedCommand = Callable[[argparse.Namespace, WireTap], Awaitable[int]]
"""A command's body, given its parsed arguments and its ``--ladder``/``--sip-log`` tap."""


def run_tapped(body: TappedCommand, args: argparse.Namespace) -> int:
    """Run a command's body on the ``--loop`` event loop with its wire tap open.

    The tap's file is closed however the body ends; an unwritable ``--sip-log`` is a
    usage error (exit 2) and Ctrl-C before the body handles signals exits 130.
    """

    async def tapped(args: argparse.Namespace) -> int:
        wire = open_wire_tap(args)
        if isinstance(wire, str):
            return fail(wire, EXIT_USAGE)
        try:
            return await body(args, wire)
        finally:
            wire.close()

    try:
        return run_async(tapped, args)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_SIGINT)


async def _watch_end(coordinator: SessionCoordinator, session_id: str, script: CallScript) -> None:
    """Tell ``script`` when its call ends (the peer hung up, or we did)."""
    async for event in coordinator.events():
        if isinstance(event, CallEnded) and event.session_id == session_id:
            script.call_ended(event.reason)
            return


async def _call_tapped(args: argparse.Namespace, wire: WireTap) -> int:
    try:
        coordinator = await _builder(args, "rvoip").build()
        await coordinator.start()
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return fail(str(exc), EXIT_NETWORK)
    wire.attach(coordinator)
    timeline: tuple[TimedAction, ...] = getattr(args, "timeline", ())
    caught: list[int] = []
    async with coordinator, anyio.create_task_group() as tg:
        await tg.start(_cancel_on_signal, tg.cancel_scope, caught)
        from_ = args.from_ or coordinator.local_uri
        try:
            call = await coordinator.create_outgoing_call(from_, args.uri)
            started = time.monotonic()
            await coordinator.wait_for_answer(call.id, args.timeout)
            answered_at = anyio.current_time()
            print(
                f"connected to {args.uri} in {(time.monotonic() - started) * 1000:.0f} ms",
                flush=True,
            )
            if getattr(args, "srtp", "off") != "off":
                suite = (await coordinator.get_media_info(call.id)).srtp_suite
                print(f"media: SRTP {suite}" if suite else "media: plain RTP (peer has no SRTP)")
            script = CallScript(coordinator, call.id, timeline, _say)
            tg.start_soon(_watch_end, coordinator, call.id, script)
            await coordinator.set_audio_source(call.id, _source(args))
            if args.record:
                await _start_recording(coordinator, call.id, args, tg)
            if args.dtmf:
                await coordinator.send_dtmf(call.id, args.dtmf)
                print(f"sent DTMF {args.dtmf}", flush=True)
            # Without a hangup or transfer in the timeline, hang up --duration seconds
            # after the answer (or right after the last action, when that is later).
            await script.run(answered_at, None if ends_call(timeline) else args.duration)
            problem = script.failure()
            if script.peer_ended is not None:
                print(f"call ended by the peer ({script.peer_ended})", flush=True)
            elif not script.ended_by_us:
                print(_quality_line(await coordinator.get_media_statistics(call.id)))
                await coordinator.terminate_session(call.id)
                print("hung up", flush=True)
            elif script.done and script.done[-1].action == "hangup":
                print("hung up", flush=True)
            await wire.settle()  # --ladder/--sip-log: the BYE's answer too
            if problem is not None:
                return fail(problem, EXIT_FAILED)  # the call was hung up above
        except CallFailed as exc:
            code = EXIT_UNREACHABLE if exc.status in (408, 503) else EXIT_FAILED
            return fail(f"call to {args.uri} failed: {exc.status} {exc.reason}", code)
        except Timeout:
            return fail(f"no answer from {args.uri}", EXIT_UNREACHABLE)
        except (MediaError, SessionError) as exc:
            return fail(str(exc), EXIT_FAILED)
        finally:
            tg.cancel_scope.cancel()
    # Leaving ``async with coordinator`` hung the call up (BYE or CANCEL) on a signal too.
    return _signal_exit(caught) if caught else EXIT_OK


def _say(text: str) -> None:
    print(text, flush=True)


def run_answer(args: argparse.Namespace) -> int:
    """``rvoip answer``."""
    try:
        args.timeline = parse_timeline(args.at)
        args.ringing = answer_timing(args)
    except TimelineError as exc:
        return fail(str(exc), EXIT_USAGE)
    return run_tapped(_answer_tapped, args)


def _tune_gc_for_serving() -> None:
    """Fewer garbage collections for a process answering many calls a second.

    A call's objects are nearly all freed by reference counting, yet each call allocates
    enough of them to run a young collection every few calls: collect young objects less
    often, and keep the startup heap (modules, classes) out of the older collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


class _AnswerHandler(AutoAnswerHandler):
    def __init__(self, reject: int) -> None:
        self.reject = reject

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        return Reject(default_reason(self.reject), self.reject) if self.reject else Accept(None)

    def decide_now(self, call: IncomingCall) -> Decision | None:
        return Reject(default_reason(self.reject), self.reject) if self.reject else Accept(None)


def answer_builder(args: argparse.Namespace, handler: CallHandler) -> SessionManagerBuilder:
    """The builder ``rvoip answer`` starts from: the common options plus its caps."""
    if args.transport == "tls" and args.cert is None:
        # A TLS *server* presents a certificate; a caller (rvoip call) needs none.
        raise ConfigurationError("answer --transport tls needs --cert (and --key unless in it)")
    builder = _builder(args, "rvoip").with_handler(handler)
    ringing = getattr(args, "ringing", None)
    if ringing is not None:  # a deferred call gets 480 after this: ring long enough
        builder = builder.with_incoming_call_timeout(max(60.0, ringing.delay + 30.0))
    if args.max_concurrent is not None:  # else the builder's default cap (1,000) stands
        builder = builder.with_max_concurrent_calls(args.max_concurrent or None)
    lag = args.overload_lag if args.overload_lag and args.overload_lag > 0 else None
    return builder.with_overload_lag(lag)


async def _answer_tapped(args: argparse.Namespace, wire: WireTap) -> int:
    ringing: RingThenDecide | None = getattr(args, "ringing", None)
    handler: CallHandler = ringing if ringing is not None else _AnswerHandler(args.reject)
    timeline: tuple[TimedAction, ...] = getattr(args, "timeline", ())
    try:
        builder = answer_builder(args, handler)
        config = builder.config()
        # --register starts only once SIGINT/SIGTERM are handled (below): a signal that
        # arrives right after the first REGISTER must still unregister, not kill us.
        accounts = config.registrations
        coordinator = SessionCoordinator(attrs.evolve(config, registrations=()), builder.handler)
        await coordinator.start()
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return fail(str(exc), EXIT_NETWORK)
    wire.attach(coordinator)
    scripts: dict[str, CallScript] = {}
    failures = 0
    _tune_gc_for_serving()
    ended = 0
    quiet: bool = args.quiet

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    caught: list[int] = []
    async with coordinator, anyio.create_task_group() as tg:
        if args.drain_timeout > 0:
            # Behind a load balancer: drain first (new INVITEs 503), then stop.
            await tg.start(
                drain_on_signal, coordinator.drain, tg.cancel_scope, caught, args.drain_timeout, say
            )
        else:
            await tg.start(_cancel_on_signal, tg.cancel_scope, caught)
        if ringing is not None:
            ringing.attach(coordinator, tg.start_soon)
        for account in accounts:
            coordinator.register(
                account.registrar,
                username=account.username,
                password=account.password,
                aor=account.aor,
                expires=account.expires,
                realm=account.realm,
            )
        # Printed once Ctrl-C/SIGTERM are handled: scripts may signal us right after it.
        print(f"answering at {coordinator.local_uri}", flush=True)
        if quiet and not (
            args.max_calls or args.record or args.play or args.tone or timeline or ringing
        ):
            # Nothing to print, count or play: no event subscription, so the coordinator
            # builds no session events at all (a load-test server's common case).
            await anyio.sleep_forever()
        events = coordinator.events()
        async for event in events:
            if isinstance(event, CallEstablished):
                try:
                    await coordinator.set_audio_source(event.session_id, _source(args))
                    if args.record and ended == 0:
                        await _start_recording(coordinator, event.session_id, args, tg)
                except SessionError:
                    pass  # the call already ended; its CallEnded event follows
                say(f"call {event.session_id}: answered")
                if timeline:
                    script = CallScript(coordinator, event.session_id, timeline, say)
                    scripts[event.session_id] = script
                    tg.start_soon(script.run, anyio.current_time())
            elif isinstance(event, MediaQualityReport):
                try:
                    session = await coordinator.get_session(event.session_id)
                except SessionError:
                    continue  # it ended meanwhile
                since = session.established_at or session.started_at
                up = (datetime.now(UTC) - since).total_seconds() if since else 0.0
                mos = event.metrics.mos_score
                say(
                    f"call {event.session_id}: {session.state.name} {up:.0f}s "
                    f"MOS {'-' if mos is None else f'{mos:.2f}'} "
                    f"loss {event.metrics.packet_loss_percent:.1f}%"
                )
            elif isinstance(event, RegistrationStateChanged):
                say(describe_registration(event.status))
            elif isinstance(event, CallEnded):
                ended += 1
                finished = scripts.pop(event.session_id, None)
                if finished is not None:
                    finished.call_ended(event.reason)
                    problem = finished.failure()
                    if problem is not None:
                        failures += 1
                        print(f"rvoip: call {event.session_id}: {problem}", file=sys.stderr)
                say(f"call {event.session_id}: ended ({event.reason})")
                if args.max_calls:
                    # Under load a slow reader can miss events: count from the coordinator.
                    stats = await coordinator.get_stats()
                    done = max(ended, stats.total_sessions - stats.active_sessions)
                    if done >= args.max_calls:
                        break
        tg.cancel_scope.cancel()
    # Leaving ``async with coordinator`` hung up every active call (BYE, CANCEL or 480).
    if caught:
        return _signal_exit(caught)
    return EXIT_FAILED if failures else EXIT_OK


def run_options(args: argparse.Namespace) -> int:
    """``rvoip options``."""
    try:
        parse_uri(args.uri)
    except SipParseError as exc:
        return fail(f"bad URI {args.uri!r}: {exc.reason}", EXIT_USAGE)
    return run_tapped(_options_tapped, args)


async def _options_tapped(args: argparse.Namespace, wire: WireTap) -> int:
    try:
        coordinator = await _builder(args, "rvoip").build()
        await coordinator.start()
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return fail(str(exc), EXIT_NETWORK)
    wire.attach(coordinator)
    async with coordinator:
        started = time.monotonic()
        try:
            response = await coordinator.send_options(args.uri, args.timeout)
        except Timeout as exc:
            return fail(str(exc), EXIT_UNREACHABLE)
        except SessionError as exc:
            return fail(str(exc), EXIT_UNREACHABLE)
        took = (time.monotonic() - started) * 1000
        print(f"{response.status} {response.reason} from {args.uri} in {took:.1f} ms")
        for name in ("Allow", "Supported", "Accept", "User-Agent", "Server"):
            value = response.headers.get(name)
            if value:
                print(f"  {name}: {value}")
        return EXIT_OK if 200 <= response.status < 300 else EXIT_FAILED
