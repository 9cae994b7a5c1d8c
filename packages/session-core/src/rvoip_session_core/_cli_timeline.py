"""Scriptable call timelines: ``--at T:ACTION`` for ``rvoip call`` and ``rvoip answer``.

A timeline is what a person testing SIP does to a call, written down so that a shell
script or a test can replay it: ``--at 2:hold --at 4:resume --at 5:dtmf=12 --at
6:transfer=sip:carol@127.0.0.1:5090 --at 8:hangup``. ``T`` is seconds after the call was
answered.

The parser (:func:`parse_timeline`) is sans-IO: strings in, a sorted tuple of frozen
:class:`TimedAction` out, or one :class:`TimelineError` whose one-line message names the
bad item. :func:`run_timeline` is the thin async edge that plays a parsed timeline on a
coordinator's call.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs

from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._errors import CallFailed, SessionError
from rvoip_session_core._handlers import AutoAnswerHandler
from rvoip_session_core._types import Decision, Defer, IncomingCall
from rvoip_sip_core import SipParseError, default_reason, parse_uri

__all__ = [
    "ACTIONS",
    "MAX_AT_SECONDS",
    "MAX_TIMELINE_ITEMS",
    "CallScript",
    "RingThenDecide",
    "TimedAction",
    "TimelineError",
    "TimelineTarget",
    "add_timeline_options",
    "answer_timing",
    "parse_timeline",
    "run_timeline",
]

MAX_AT_SECONDS = 86_400.0
"""Latest time an action may be scheduled at (one day): a typo like ``--at
20000000:hangup`` is refused instead of keeping a call (and its RTP ports) up for months."""

MAX_TIMELINE_ITEMS = 1_000
"""Most ``--at`` items one command takes."""

ACTIONS: dict[str, str] = {
    "hold": "",
    "resume": "",
    "hangup": "",
    "mute": "",
    "unmute": "",
    "dtmf": "DIGITS",
    "transfer": "URI",
    "message": "TEXT",
}
"""Each timeline action and the argument it takes after ``=`` ("" for none)."""

USAGE = "expected T:ACTION with ACTION one of " + ", ".join(
    f"{name}={arg}" if arg else name for name, arg in ACTIONS.items()
)

# T: a plain decimal number of seconds (no sign, exponent, inf or nan).
_TIME = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# RFC 4733 §3.2 events 0-15: the digits 0-9, * and #, and A-D.
_DTMF = re.compile(r"[0-9*#A-Da-d]+")
_MAX_DTMF = 64
_MAX_TEXT = 1_300  # RFC 3428 §8: a MESSAGE over UDP stays under 1,300 bytes


class TimelineError(ValueError):
    """A ``--at`` item that is not ``T:ACTION``; the message is one line naming it."""


@attrs.frozen
class TimedAction:
    """One action of a timeline.

    Attributes:
        at: seconds after the answer.
        action: one of :data:`ACTIONS`.
        argument: the DIGITS, URI or TEXT after ``=``; "" for actions without one.
        item: the ``--at`` text it was parsed from (for messages).
    """

    at: float
    action: str
    argument: str = ""
    item: str = ""

    def describe(self) -> str:
        """``hold`` or ``dtmf=12``: the action as the user wrote it."""
        return f"{self.action}={self.argument}" if self.argument else self.action


def _bad(item: str, why: str) -> TimelineError:
    # repr() keeps the message on one line whatever the item holds (newlines, escapes).
    return TimelineError(f"bad --at {item!r}: {why}; {USAGE}")


def parse_item(item: str) -> TimedAction:
    """Parse one ``T:ACTION`` item.

    Raises:
        TimelineError: the item is not a valid timeline action.
    """
    when, colon, rest = item.partition(":")
    if not colon:
        raise _bad(item, "no ':' between the time and the action")
    when = when.strip()
    if _TIME.fullmatch(when) is None:
        raise _bad(item, f"time {when!r} is not a number of seconds")
    at = float(when)
    if not math.isfinite(at) or at > MAX_AT_SECONDS:
        raise _bad(item, f"time over {MAX_AT_SECONDS:.0f} s")
    name, equals, argument = rest.partition("=")
    name = name.strip().lower()
    if name not in ACTIONS:
        raise _bad(item, f"unknown action {name!r}")
    wanted = ACTIONS[name]
    if not wanted:
        if equals:
            raise _bad(item, f"{name} takes no argument")
        return TimedAction(at, name, "", item)
    if not argument:
        raise _bad(item, f"{name} needs ={wanted}")
    if name == "dtmf":
        if _DTMF.fullmatch(argument) is None or len(argument) > _MAX_DTMF:
            raise _bad(item, f"DTMF digits are 0-9 * # A-D, at most {_MAX_DTMF}")
        argument = argument.upper()
    elif name == "transfer":
        try:
            parse_uri(argument)
        except SipParseError as exc:
            raise _bad(item, f"transfer target is not a SIP URI ({exc.reason})") from None
    elif len(argument.encode("utf-8", "surrogatepass")) > _MAX_TEXT:
        raise _bad(item, f"message over {_MAX_TEXT} bytes")
    return TimedAction(at, name, argument, item)


def parse_timeline(items: Sequence[str]) -> tuple[TimedAction, ...]:
    """Parse the ``--at`` items of a command, in time order (ties keep their order).

    Raises:
        TimelineError: an item is malformed (the first one found is named), or there are
            more than :data:`MAX_TIMELINE_ITEMS`.
    """
    if len(items) > MAX_TIMELINE_ITEMS:
        raise TimelineError(f"at most {MAX_TIMELINE_ITEMS} --at items, not {len(items)}")
    actions = [parse_item(item) for item in items]
    return tuple(sorted(actions, key=lambda action: action.at))  # sorted() is stable


def ends_call(timeline: Sequence[TimedAction]) -> bool:
    """True when the timeline hangs up or transfers (our leg ends by itself)."""
    return any(action.action in ("hangup", "transfer") for action in timeline)


class TimelineTarget:
    """What a timeline acts on: one call of a coordinator (the async edge).

    Args:
        coordinator: the coordinator holding the call.
        session_id: the call.
        say: prints one line of progress.
    """

    def __init__(
        self, coordinator: SessionCoordinator, session_id: str, say: Callable[[str], None]
    ) -> None:
        self.coordinator = coordinator
        self.session_id = session_id
        self.say = say
        self.ending = False
        """True once we hang up or transfer: the call's end is then ours, not the peer's."""

    async def perform(self, action: TimedAction) -> None:
        """Carry out one action.

        Raises:
            SessionError: the coordinator refused or the peer failed the action.
        """
        c, sid = self.coordinator, self.session_id
        name, arg = action.action, action.argument
        if name == "hold":
            await c.hold_session(sid)
        elif name == "resume":
            await c.resume_session(sid)
        elif name == "mute":
            await c.stop_audio_transmission(sid)
        elif name == "unmute":
            await c.start_audio_transmission(sid)
        elif name == "dtmf":
            await c.send_dtmf(sid, arg)
        elif name == "message":
            await c.send_message("", arg, session_id=sid)  # in the call's dialog
        elif name == "transfer":
            self.ending = True
            # RFC 3515 blind transfer: REFER, then the NOTIFYs report the new call's fate;
            # our leg is hung up by the coordinator once the transferee reached the target.
            try:
                await c.transfer_session(sid, arg)
                status = await c.wait_for_transfer(sid, 32.0)
                if status >= 300:
                    raise CallFailed(status, "transfer failed", session_id=sid)
            except SessionError:
                self.ending = False  # refused or failed: the call is still ours to end
                raise
        elif name == "hangup":
            self.ending = True
            await c.terminate_session(sid)


class CallScript:
    """Plays a timeline on one answered call, stopping when the peer ends the call.

    Args:
        coordinator: the coordinator holding the call.
        session_id: the call.
        timeline: parsed actions in time order.
        say: prints one line of progress.

    Attributes:
        done: the actions carried out.
        error: why an action failed (the script stopped there), or None.
        failed_action: that action, or None.
        peer_ended: the end reason when the call ended before we ended it, or None.
    """

    def __init__(
        self,
        coordinator: SessionCoordinator,
        session_id: str,
        timeline: Sequence[TimedAction],
        say: Callable[[str], None],
    ) -> None:
        self.target = TimelineTarget(coordinator, session_id, say)
        self.timeline = tuple(timeline)
        self.scope = anyio.CancelScope()
        self.done: list[TimedAction] = []
        self.error: SessionError | None = None
        self.failed_action: TimedAction | None = None
        self.peer_ended: str | None = None

    @property
    def ended_by_us(self) -> bool:
        """True when a hangup or transfer action ended (or is ending) the call."""
        return self.target.ending

    async def run(self, answered_at: float, stay: float | None = None) -> None:
        """Play the timeline; then, unless it ended the call, stay until ``stay`` seconds.

        Args:
            answered_at: ``anyio.current_time()`` when the call was answered (T = 0).
            stay: seconds after the answer to keep the call up after the last action
                (None: return at once).
        """
        with self.scope:
            try:
                await run_timeline(self, answered_at)
            except SessionError as exc:
                if self.peer_ended is None:
                    self.error = exc
                return
            if stay is not None and not self.ended_by_us:
                delay = answered_at + stay - anyio.current_time()
                if delay > 0:
                    await anyio.sleep(delay)

    def call_ended(self, reason: str) -> None:
        """The call ended (its ``CallEnded`` event): stop, unless we ended it ourselves."""
        if not self.ended_by_us:
            self.peer_ended = reason
            self.scope.cancel()

    def failure(self) -> str | None:
        """One line saying which action failed and why, or None."""
        if self.error is None or self.failed_action is None:
            return None
        action = self.failed_action
        return f"at {action.at:g}s {action.describe()} failed: {self.error}"


async def run_timeline(script: CallScript, answered_at: float) -> None:
    """Play ``script``'s timeline; returns after the last action (or a hangup/transfer).

    Raises:
        SessionError: an action failed (``script.failed_action`` names it).
    """
    target = script.target
    for action in script.timeline:
        delay = answered_at + action.at - anyio.current_time()
        if delay > 0:
            await anyio.sleep(delay)
        script.failed_action = action
        await target.perform(action)
        script.failed_action = None
        script.done.append(action)
        target.say(f"at {action.at:g}s: {action.describe()}")
        if action.action in ("hangup", "transfer"):
            return


class RingThenDecide(AutoAnswerHandler):
    """``answer --answer-after``/``--reject-after``: ring at once, decide after a delay.

    Each incoming call is deferred (the coordinator sends 180 Ringing at once, RFC 3261
    §13.3.1.1), then answered with 200 or refused with ``reject_code`` after ``delay``
    seconds, unless the caller CANCELs first (487, the coordinator's part).

    Args:
        delay: seconds between the INVITE and the decision.
        reject_code: None to answer, else the 4xx-6xx status to refuse with.
        on_ringing: awaited with the coordinator and the session id once the call rings,
            before the delay runs (the hook for ``--early-media``: a 183 with audio
            while ringing, once the coordinator has ``send_early_media``).
    """

    def __init__(
        self,
        delay: float,
        reject_code: int | None = None,
        on_ringing: Callable[[SessionCoordinator, str], Awaitable[None]] | None = None,
    ) -> None:
        self.delay = delay
        self.reject_code = reject_code
        self.on_ringing = on_ringing
        self._coordinator: SessionCoordinator | None = None
        self._start: Callable[..., object] | None = None
        self._pending: list[str] = []

    def attach(self, coordinator: SessionCoordinator, start_soon: Callable[..., object]) -> None:
        """Start deciding (calls that arrived before wait from now on)."""
        self._coordinator = coordinator
        self._start = start_soon
        pending, self._pending = self._pending, []
        for session_id in pending:
            start_soon(self._decide, session_id)

    def _later(self, session_id: str) -> Defer:
        if self._start is None:
            self._pending.append(session_id)
        else:
            self._start(self._decide, session_id)
        return Defer()

    def decide_now(self, call: IncomingCall) -> Decision | None:
        """Defer at once (180 Ringing) and schedule the decision."""
        return self._later(call.id)

    async def on_incoming_call(self, call: IncomingCall) -> Decision:
        """Defer (180 Ringing) and schedule the decision."""
        return self._later(call.id)

    async def _decide(self, session_id: str) -> None:
        coordinator = self._coordinator
        assert coordinator is not None
        started = anyio.current_time()
        if self.on_ringing is not None:
            try:
                await self.on_ringing(coordinator, session_id)
            except SessionError:
                return  # the caller gave up meanwhile
        await anyio.sleep(self.delay - (anyio.current_time() - started))
        try:
            if self.reject_code is None:
                await coordinator.accept_incoming_call(session_id)
            else:
                code = self.reject_code
                await coordinator.reject_incoming_call(session_id, default_reason(code), code)
        except SessionError:
            pass  # the caller gave up (CANCEL) meanwhile: its CallEnded says so


def add_timeline_options(parser: argparse.ArgumentParser, *, answering: bool = False) -> None:
    """``--at T:ACTION`` (and for ``answer``: ``--answer-after``, ``--reject-after``)."""
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="T:ACTION",
        help="at T seconds after the answer do ACTION (repeatable): hold, resume, "
        "dtmf=DIGITS, transfer=URI, message=TEXT, mute, unmute, hangup",
    )
    if not answering:
        return
    parser.add_argument(
        "--answer-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="send 180 Ringing at once and answer after SECONDS (a caller may CANCEL)",
    )
    parser.add_argument(
        "--reject-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="send 180 Ringing at once and refuse after SECONDS with --reject-code",
    )
    parser.add_argument(
        "--reject-code",
        type=int,
        default=486,
        metavar="STATUS",
        help="status --reject-after refuses with (4xx-6xx, default 486 Busy Here)",
    )
    parser.add_argument(
        "--early-media",
        action="store_true",
        help="while ringing, send 183 with our SDP and play the audio source before the "
        "answer or refusal (reliably with 100rel when the caller supports it)",
    )


def answer_timing(args: argparse.Namespace) -> RingThenDecide | None:
    """The ringing handler ``answer`` needs, None to answer at once.

    Raises:
        TimelineError: a negative or over-long delay, both delays, or a bad reject code.
    """
    answer_after = getattr(args, "answer_after", None)
    reject_after = getattr(args, "reject_after", None)
    if answer_after is not None and reject_after is not None:
        raise TimelineError("--answer-after and --reject-after exclude each other")
    delay = answer_after if reject_after is None else reject_after
    early = _send_early_media if getattr(args, "early_media", False) else None
    if early is not None and bool(getattr(args, "reject", None)):
        raise TimelineError("--early-media needs a ringing call: not with --reject")
    if delay is None:
        # --early-media alone: the 183 and its audio, then the answer at once.
        return None if early is None else RingThenDecide(0.0, on_ringing=early)
    if getattr(args, "reject", 0):
        raise TimelineError("--reject refuses at once; to ring first use --reject-after")
    if not 0 <= delay <= MAX_AT_SECONDS:  # also refuses nan
        raise TimelineError(f"a ring time is 0 to {MAX_AT_SECONDS:.0f} seconds, not {delay}")
    if reject_after is None:
        return RingThenDecide(delay, on_ringing=early)
    code = int(args.reject_code)
    if not 400 <= code <= 699:
        raise TimelineError(f"--reject-code needs a 4xx-6xx status, not {code}")
    return RingThenDecide(delay, code, on_ringing=early)


async def _send_early_media(coordinator: SessionCoordinator, session_id: str) -> None:
    """``--early-media``: the 183 with our answer, media on (RFC 3262 / RFC 3960)."""
    await coordinator.send_early_media(session_id)
