"""``rvoip phone``: an interactive softphone in the terminal.

Commands are typed at a prompt (``dial URI``, ``answer [N]``, ``hold N`` ...) under a live
table of the calls (number, peer, state, codec, MOS, loss, jitter) that ``rich`` redraws
in place. The pieces, from the inside out:

- :func:`parse_command`: sans-IO, one typed line to a frozen :class:`PhoneCommand` or a
  :class:`PhoneUsageError` whose message is one line.
- :class:`CallBook`: sans-IO, gives each call a small number (``1``, ``2`` ...) that the
  user types instead of a session id, and keeps it for the call's life.
- :class:`PhoneDispatcher`: carries a command out over the coordinator's public API and
  returns the lines to show; unit-testable with any coordinator.
- :func:`run_phone`: the thin terminal layer (``rich.live.Live``, a keystroke reader).

``rich`` is an optional dependency (``pip install 'rvoip-session-core[phone]'``): the
library and the other commands do without it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import select
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread
import attrs

from rvoip_session_core._cli_accounts import add_account_options, describe_registration
from rvoip_session_core._cli_commands import (
    EXIT_CODES,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    _builder,
    _cancel_on_signal,
    _common,
    _signal_exit,
    _source,
    fail,
    run_tapped,
)
from rvoip_session_core._cli_log import WireTap, add_log_options
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._errors import (
    CallFailed,
    ConfigurationError,
    SessionError,
    TransportError,
)
from rvoip_session_core._events import (
    CallEnded,
    CallEstablished,
    IncomingCallReceived,
    RegistrationStateChanged,
    RegistrationStatus,
    TransferProgress,
)
from rvoip_session_core._handlers import CallHandler
from rvoip_session_core._media import AudioSourceSpec
from rvoip_session_core._types import (
    CallDirection,
    CallSession,
    CallState,
    Decision,
    Defer,
    IncomingCall,
)
from rvoip_sip_core import SipParseError, parse_uri

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "COMMANDS",
    "MAX_PHONE_LINES",
    "CallBook",
    "CallRow",
    "PhoneCommand",
    "PhoneDispatcher",
    "PhoneHandler",
    "PhoneUsageError",
    "parse_command",
    "run_phone",
]

COMMANDS: dict[str, str] = {
    "dial": "dial URI: call URI",
    "answer": "answer [N]: answer ringing call N (default: the oldest ringing)",
    "reject": "reject [N]: refuse ringing call N with 486 Busy Here",
    "hangup": "hangup [N]: hang up call N (default: the only call)",
    "hold": "hold N: put call N on hold (re-INVITE sendonly)",
    "resume": "resume N: take call N off hold",
    "transfer": "transfer N URI: blind transfer of call N to URI (REFER)",
    "atransfer": "atransfer N M: attended transfer: connect call N's peer to call M's peer",
    "dtmf": "dtmf N DIGITS: send DTMF digits (RFC 4733) on call N",
    "mute": "mute N: send silence on call N",
    "unmute": "unmute N: send audio again on call N",
    "msg": "msg URI TEXT: send an instant message (SIP MESSAGE)",
    "calls": "calls: list the calls",
    "reg": "reg: show the registrations",
    "help": "help: this list",
    "quit": "quit: hang up every call and exit",
}
"""Every phone command with its one-line help."""

# name -> (required, optional) positional arguments; msg takes the rest of the line.
_ARITY: dict[str, tuple[int, int]] = {
    "dial": (1, 0),
    "answer": (0, 1),
    "reject": (0, 1),
    "hangup": (0, 1),
    "hold": (1, 0),
    "resume": (1, 0),
    "transfer": (2, 0),
    "atransfer": (2, 0),
    "dtmf": (2, 0),
    "mute": (1, 0),
    "unmute": (1, 0),
    "msg": (2, 0),
    "calls": (0, 0),
    "reg": (0, 0),
    "help": (0, 0),
    "quit": (0, 0),
}
_ALIASES = {"exit": "quit", "call": "dial", "bye": "hangup", "h": "help", "?": "help"}
_NUMBERED = {
    "answer",
    "reject",
    "hangup",
    "hold",
    "resume",
    "transfer",
    "atransfer",
    "dtmf",
    "mute",
    "unmute",
}
_DTMF = set("0123456789*#ABCD")

MAX_PHONE_LINES = 12
"""Lines of command output kept on screen under the table (older ones scroll away)."""

_MAX_LINE = 2_000  # a typed line longer than this is refused, not parsed


class PhoneUsageError(ValueError):
    """A typed line that is not a phone command; the message is one line."""


@attrs.frozen
class PhoneCommand:
    """One parsed command.

    Attributes:
        name: one of :data:`COMMANDS`.
        number: the call number N, None when not given.
        args: the remaining arguments (URI, DIGITS, TEXT).
    """

    name: str
    number: int | None = None
    args: tuple[str, ...] = ()


def parse_command(line: str) -> PhoneCommand | None:
    """Parse one typed line (None for an empty line).

    Raises:
        PhoneUsageError: unknown command, wrong arguments, a bad call number, URI or digits.
    """
    if len(line) > _MAX_LINE:
        raise PhoneUsageError(f"line over {_MAX_LINE} characters")
    text = line.strip()
    if not text:
        return None
    head, _, rest = text.partition(" ")
    name = head.lower()
    name = _ALIASES.get(name, name)
    if name not in COMMANDS:
        raise PhoneUsageError(f"unknown command {head!r}; type help")
    usage = COMMANDS[name].split(":")[0]
    if name == "msg":
        uri, _, message = rest.strip().partition(" ")
        words = [uri, message.strip()] if uri else []
    else:
        try:
            words = shlex.split(rest)
        except ValueError as exc:
            raise PhoneUsageError(f"{usage}: {exc}") from None
    required, optional = _ARITY[name]
    if not required <= len([w for w in words if w]) <= required + optional:
        raise PhoneUsageError(f"usage: {usage}")
    number: int | None = None
    if name in _NUMBERED and words:
        first = words[0]
        if not first.isascii() or not first.isdigit() or len(first) > 6 or int(first) < 1:
            raise PhoneUsageError(f"{usage}: {first!r} is not a call number")
        number = int(first)
        words = words[1:]
    for uri_arg in _uri_args(name, words):
        try:
            parse_uri(uri_arg)
        except SipParseError as exc:
            raise PhoneUsageError(f"{usage}: {uri_arg!r} is not a SIP URI ({exc.reason})") from None
    if name == "atransfer":
        second = words[0]
        if not second.isascii() or not second.isdigit() or len(second) > 6 or int(second) < 1:
            raise PhoneUsageError(f"{usage}: {second!r} is not a call number")
    if name == "dtmf":
        digits = words[0].upper()
        if not digits or not set(digits) <= _DTMF or len(digits) > 64:
            raise PhoneUsageError(f"{usage}: DTMF digits are 0-9 * # A-D, at most 64")
        words = [digits]
    return PhoneCommand(name, number, tuple(words))


def _uri_args(name: str, words: Sequence[str]) -> list[str]:
    if name in ("dial", "msg"):
        return [words[0]]
    if name == "transfer":
        return [words[0]]
    return []


@attrs.define(eq=False)
class CallBook:
    """Small numbers for calls: the first call seen is 1, the next 2, and so on.

    A number stays with its call until the call ends; numbers are not reused while the
    phone runs (a late command for an ended call then says so instead of acting on
    another call).
    """

    _by_id: dict[str, int] = attrs.field(init=False, factory=dict)
    _next: int = attrs.field(init=False, default=1)

    def number(self, session_id: str) -> int:
        """The number of ``session_id``, given now if it has none."""
        found = self._by_id.get(session_id)
        if found is None:
            found = self._by_id[session_id] = self._next
            self._next += 1
        return found

    def session(self, number: int) -> str | None:
        """The session id numbered ``number``, or None."""
        for session_id, n in self._by_id.items():
            if n == number:
                return session_id
        return None

    def forget(self, session_id: str) -> None:
        """The call ended: drop its number."""
        self._by_id.pop(session_id, None)


@attrs.frozen
class CallRow:
    """One line of the calls table."""

    number: int
    peer: str
    direction: str
    state: str
    codec: str
    mos: str
    loss: str
    jitter: str


class PhoneHandler(CallHandler):
    """Lets incoming calls ring (180) until the user types ``answer`` or ``reject``."""

    def decide_now(self, call: IncomingCall) -> Decision | None:
        """Ring at once: the user decides."""
        return Defer()

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Ring: the user decides."""
        return Defer()

    async def on_call_ended(self, call: CallSession, reason: str) -> None:
        """Nothing to clean up (the table is rebuilt from the coordinator)."""


class PhoneDispatcher:
    """Carries out phone commands on a coordinator; returns the lines to show.

    Args:
        coordinator: a started coordinator whose handler lets calls ring
            (:class:`PhoneHandler`).
        book: the call numbering shared with the table.
    """

    def __init__(self, coordinator: SessionCoordinator, book: CallBook | None = None) -> None:
        self.coordinator = coordinator
        self.book = book if book is not None else CallBook()
        self.quit = False

    async def execute(self, command: PhoneCommand) -> list[str]:
        """Run ``command``; a refusal or failure is returned as a line, never raised."""
        try:
            return await self._execute(command)
        except CallFailed as exc:
            return [f"{command.name} failed: {exc.status} {exc.reason}".rstrip()]
        except SessionError as exc:
            return [f"{command.name} failed: {exc}"]

    async def _execute(self, command: PhoneCommand) -> list[str]:
        c = self.coordinator
        name, args = command.name, command.args
        if name == "help":
            return list(COMMANDS.values())
        if name == "quit":
            self.quit = True
            return ["bye"]
        if name == "calls":
            rows = await self.rows()
            return [_row_text(row) for row in rows] or ["no calls"]
        if name == "reg":
            statuses = c.registration_status()
            if not statuses:
                return ["not registering (start with --register URI --user NAME)"]
            return [_registration_text(status) for status in statuses]
        if name == "dial":
            call = await c.create_outgoing_call(c.local_uri, args[0])
            return [f"call {self.book.number(call.id)}: calling {args[0]}"]
        if name == "msg":
            response = await c.send_message(args[0], args[1])
            return [f"message to {args[0]}: {response.status} {response.reason}"]
        session_id, number = await self._target(command)
        if name == "answer":
            await c.accept_incoming_call(session_id)
            return [f"call {number}: answering"]
        if name == "reject":
            await c.reject_incoming_call(session_id, "Busy Here", 486)
            return [f"call {number}: rejected (486 Busy Here)"]
        if name == "hangup":
            await c.terminate_session(session_id)
            return [f"call {number}: hung up"]
        if name == "hold":
            await c.hold_session(session_id)
            return [f"call {number}: on hold"]
        if name == "resume":
            await c.resume_session(session_id)
            return [f"call {number}: resumed"]
        if name == "mute":
            await c.stop_audio_transmission(session_id)
            return [f"call {number}: muted"]
        if name == "unmute":
            await c.start_audio_transmission(session_id)
            return [f"call {number}: unmuted"]
        if name == "dtmf":
            await c.send_dtmf(session_id, args[0])
            return [f"call {number}: sent DTMF {args[0]}"]
        if name == "atransfer":
            # RFC 3515 + RFC 3891: REFER to N's peer with Replaces naming call M.
            other = self.book.session(int(args[0]))
            if other is None:
                return [f"no call {args[0]}"]
            await c.transfer_attended(session_id, other)
            return [f"call {number}: attended transfer to call {args[0]}'s peer (REFER accepted)"]
        # transfer: RFC 3515 blind transfer; the NOTIFYs arrive as TransferProgress events
        # and the call is hung up once the transferee reached the target.
        await c.transfer_session(session_id, args[0])
        return [f"call {number}: transferring to {args[0]} (REFER accepted)"]

    async def _target(self, command: PhoneCommand) -> tuple[str, int]:
        """The session a numbered command acts on (N, or the obvious call without N)."""
        sessions = await self.coordinator.list_active_sessions()
        if command.number is not None:
            session_id = self.book.session(command.number)
            if session_id is None or all(s.id != session_id for s in sessions):
                raise SessionError(f"no call {command.number} (type calls)")
            return session_id, command.number
        ringing = [
            s
            for s in sessions
            if s.direction is CallDirection.Incoming and s.state is CallState.Ringing
        ]
        if command.name in ("answer", "reject"):
            if not ringing:
                raise SessionError("no call is ringing")
            oldest = min(ringing, key=lambda s: self.book.number(s.id))
            return oldest.id, self.book.number(oldest.id)
        if len(sessions) != 1:
            raise SessionError(f"{len(sessions)} calls: say which (e.g. {command.name} 1)")
        return sessions[0].id, self.book.number(sessions[0].id)

    async def rows(self) -> list[CallRow]:
        """The calls table: one row per call, by number."""
        c = self.coordinator
        rows = []
        for session in await c.list_active_sessions():
            number = self.book.number(session.id)
            incoming = session.direction is CallDirection.Incoming
            peer = session.from_ if incoming else (session.target or session.to)
            codec = mos = loss = jitter = "-"
            try:
                info = await c.get_media_info(session.id)
                stats = await c.get_media_statistics(session.id)
            except SessionError:
                info, stats = None, None
            if info is not None and info.codec:
                codec = info.codec
            quality = None if stats is None else stats.quality_metrics
            if quality is not None:
                mos = "-" if quality.mos_score is None else f"{quality.mos_score:.2f}"
                loss = f"{quality.packet_loss_percent:.1f}"
                jitter = f"{quality.jitter_ms:.1f}"
            state = session.state.name
            rows.append(
                CallRow(number, peer, "in" if incoming else "out", state, codec, mos, loss, jitter)
            )
        return sorted(rows, key=lambda row: row.number)

    def describe_event(self, event: object) -> str | None:
        """A line for a session event worth telling the user about, else None."""
        if isinstance(event, IncomingCallReceived):
            number = self.book.number(event.session_id)
            return f"call {number}: incoming from {event.call.from_} (answer {number})"
        if isinstance(event, CallEstablished):
            return f"call {self.book.number(event.session_id)}: connected"
        if isinstance(event, CallEnded):
            number = self.book.number(event.session_id)
            self.book.forget(event.session_id)
            return f"call {number}: ended ({event.reason})"
        if isinstance(event, TransferProgress):
            return f"call {self.book.number(event.session_id)}: transfer {event.status}"
        if isinstance(event, RegistrationStateChanged):
            return _registration_text(event.status)
        return None


def _row_text(row: CallRow) -> str:
    return (
        f"{row.number}: {row.direction} {row.peer} {row.state} codec {row.codec} "
        f"MOS {row.mos} loss {row.loss}% jitter {row.jitter} ms"
    )


def _registration_text(status: RegistrationStatus) -> str:
    return describe_registration(status)


# ----------------------------------------------------------------------- the terminal


def missing_rich() -> str | None:
    """A one-line error when ``rich`` is not installed, else None."""
    import importlib.util

    if importlib.util.find_spec("rich") is None:
        return (
            "rvoip phone needs rich, which is not installed: "
            "pip install 'rvoip-session-core[phone]'"
        )
    return None


class _Screen:
    """What the terminal shows: the table, the last lines of output and the prompt."""

    def __init__(self, title: str, echo: Callable[[str], None] | None = None) -> None:
        self.title = title
        self.echo = echo
        self.registration = ""
        self.rows: list[CallRow] = []
        self.lines: collections.deque[str] = collections.deque(maxlen=MAX_PHONE_LINES)
        self.typed = ""

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.echo is not None:  # not a terminal: plain lines, no table redrawn
            self.echo(line)

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, expand=False)
        for column, justify in (
            ("#", "right"),
            ("peer", "left"),
            ("dir", "left"),
            ("state", "left"),
            ("codec", "left"),
            ("MOS", "right"),
            ("loss %", "right"),
            ("jitter ms", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(
                str(row.number),
                row.peer,
                row.direction,
                row.state,
                row.codec,
                row.mos,
                row.loss,
                row.jitter,
            )
        parts: list[RenderableType] = [table]
        if self.registration:
            parts.append(Text(self.registration))
        parts.extend(Text(line) for line in self.lines)
        parts.append(Text(f"phone> {self.typed}"))
        return Group(*parts)


def _read_some(fd: int) -> bytes | None:
    """Up to 1 KiB from ``fd`` within 0.2 s (b"" when nothing came, None at end of file).

    Bounded so the reading thread never outlives the phone by more than 0.2 s.
    """
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        return b""
    data = os.read(fd, 1024)
    return data if data else None


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[bool]:
    """Keys one at a time without echo while inside (when ``fd`` is a terminal)."""
    if not os.isatty(fd):
        yield False
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _LineEditor:
    """Turns keystrokes into lines: printable keys, backspace, Enter; escapes dropped."""

    def __init__(self) -> None:
        self.buffer = ""
        self._escape = False

    def feed(self, text: str) -> list[str]:
        lines = []
        for char in text:
            if self._escape:
                if char.isalpha() or char == "~":
                    self._escape = False
                continue
            if char == "\x1b":
                self._escape = True
            elif char in "\r\n":
                lines.append(self.buffer)
                self.buffer = ""
            elif char in "\x7f\b":
                self.buffer = self.buffer[:-1]
            elif char == "\x15":  # Ctrl-U: clear the line
                self.buffer = ""
            elif char.isprintable() and len(self.buffer) < _MAX_LINE:
                self.buffer += char
        return lines


async def run_phone(
    coordinator: SessionCoordinator,
    tg: anyio.abc.TaskGroup,
    *,
    stdin_fd: int | None = None,
    refresh: float = 0.5,
    on_quit: Callable[[], None] | None = None,
) -> None:
    """Run the phone's terminal until ``quit`` or end of input.

    Args:
        coordinator: started, with a :class:`PhoneHandler`.
        tg: a task group for the phone's background tasks (cancelled by the caller).
        stdin_fd: where keys come from (default: standard input).
        refresh: seconds between redraws of the table.
        on_quit: called when the user quits.
    """
    from rich.console import Console
    from rich.live import Live

    fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    dispatcher = PhoneDispatcher(coordinator)
    console = Console()
    title = f"rvoip phone {coordinator.local_uri}  (type help)"
    # Output to a pipe or file (a script driving the phone): plain lines as they come,
    # no table redrawn in place (``calls`` lists the calls).
    plain = not console.is_terminal
    screen = _Screen(title, (lambda line: print(line, flush=True)) if plain else None)
    if plain:
        print(title, flush=True)
    editor = _LineEditor()
    changed = anyio.Event()

    def poke() -> None:
        nonlocal changed
        changed.set()
        changed = anyio.Event()

    async def watch_events() -> None:
        async for event in coordinator.events():
            line = dispatcher.describe_event(event)
            if line is not None:
                screen.say(line)
                if isinstance(event, RegistrationStateChanged):
                    screen.registration = line
                poke()

    tg.start_soon(watch_events)
    live = None if plain else Live(console=console, auto_refresh=False, transient=False)
    with _cbreak(fd) as keys, live if live is not None else contextlib.nullcontext():

        async def redraw(live: Live) -> None:
            while True:
                screen.rows = await dispatcher.rows()
                live.update(screen.render(), refresh=True)
                with anyio.move_on_after(refresh):
                    await changed.wait()

        if live is not None:
            tg.start_soon(redraw, live)
        while not dispatcher.quit:
            data = await anyio.to_thread.run_sync(_read_some, fd)
            if data is None:
                break  # end of input (Ctrl-D, a closed pipe): as quit
            if not data:
                continue
            text = data.decode("utf-8", "replace")
            lines = editor.feed(text)  # a pipe's lines too, split across reads or not
            screen.typed = editor.buffer if keys else ""
            for line in lines:
                if line.strip():
                    screen.say(f"phone> {line.strip()}")
                try:
                    command = parse_command(line)
                except PhoneUsageError as exc:
                    screen.say(str(exc))
                    continue
                if command is not None:
                    for out in await dispatcher.execute(command):
                        screen.say(out)
                if command is not None and command.name == "quit":
                    break
            poke()
        if live is not None:
            screen.rows = await dispatcher.rows()
            live.update(screen.render(), refresh=True)
    if on_quit is not None:
        on_quit()


def add_phone_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``phone`` sub-command."""
    phone = sub.add_parser(
        "phone",
        help="an interactive softphone in the terminal (needs rich: the [phone] extra)",
        epilog=EXIT_CODES,
    )
    _common(phone, default_port=5060)
    add_account_options(phone, register=True)
    add_log_options(phone)


def run_phone_command(args: argparse.Namespace) -> int:
    """``rvoip phone``: 0 after ``quit`` (or end of input)."""
    problem = missing_rich()
    if problem is not None:
        return fail(problem, EXIT_USAGE)
    return run_tapped(_phone_tapped, args)


async def _phone_tapped(args: argparse.Namespace, wire: WireTap) -> int:
    try:
        builder = _builder(args, "rvoip").with_handler(PhoneHandler())
        config = builder.config()
        # As in ``answer``: registering starts once SIGINT/SIGTERM are handled.
        accounts = config.registrations
        coordinator = SessionCoordinator(attrs.evolve(config, registrations=()), builder.handler)
        await coordinator.start()
    except ConfigurationError as exc:
        return fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        return fail(str(exc), EXIT_NETWORK)
    wire.attach(coordinator)
    caught: list[int] = []
    source = _source(args)
    async with coordinator, anyio.create_task_group() as tg:
        await tg.start(_cancel_on_signal, tg.cancel_scope, caught)
        for account in accounts:
            coordinator.register(
                account.registrar,
                username=account.username,
                password=account.password,
                aor=account.aor,
                expires=account.expires,
                realm=account.realm,
            )
        if source is not None:
            tg.start_soon(_play_on_answer, coordinator, source)
        await run_phone(coordinator, tg)
        # quit: hang up here (not only on leaving the coordinator) so that the BYEs'
        # answers still reach --ladder/--sip-log.
        for session in await coordinator.list_active_sessions():
            with contextlib.suppress(SessionError):
                await coordinator.terminate_session(session.id)
        await wire.settle()
        tg.cancel_scope.cancel()
    # Leaving ``async with coordinator`` hung up every call and unregistered.
    return _signal_exit(caught) if caught else EXIT_OK


async def _play_on_answer(coordinator: SessionCoordinator, source: AudioSourceSpec) -> None:
    """``--tone``/``--play``: the audio each call sends once answered."""
    async for event in coordinator.events():
        if isinstance(event, CallEstablished):
            with contextlib.suppress(SessionError):
                await coordinator.set_audio_source(event.session_id, source)
