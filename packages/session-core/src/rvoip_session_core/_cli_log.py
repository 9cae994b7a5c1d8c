"""``--ladder`` and ``--sip-log FILE``: what the command line saw on the wire.

Both read the coordinator's message tap (``set_message_tap(..., received=True)``), which
is installed only when one of them is asked for: without them no transport is wrapped
and no message pays anything.

- :class:`SipLogWriter` writes every SIP message sent or received to a file, each headed
  by a line with the UTC time, the direction and both addresses (what pjsua's and
  baresip's logs show, so a failed test can be read after the fact).
- :class:`LadderRecorder` keeps a short label per message and draws the ladder the demo
  draws (:func:`rvoip_session_core._ladder.render_ladder`) when the command ends.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

import anyio
import attrs

from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._ladder import LadderEntry, render_ladder
from rvoip_sip_core import Request, SipParseError, parse_message

__all__ = [
    "MAX_LADDER_ENTRIES",
    "LadderRecorder",
    "SipLogWriter",
    "WireTap",
    "add_log_options",
    "label_of",
]

MAX_LADDER_ENTRIES = 10_000
"""Most messages ``--ladder`` keeps for drawing; later ones are counted, not drawn (a
long-running ``rvoip answer --ladder`` must not grow without bound)."""


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """``--ladder`` and ``--sip-log FILE``."""
    parser.add_argument(
        "--ladder",
        action="store_true",
        help="print the SIP ladder (every message sent and received) when done",
    )
    parser.add_argument(
        "--sip-log",
        default=None,
        metavar="FILE",
        help="write every SIP message sent/received, with time, direction and addresses",
    )


def label_of(data: bytes) -> str | None:
    """``INVITE (SDP)`` / ``200 OK (INVITE)``: a short label for the ladder; None if unparsable."""
    try:
        msg = parse_message(data)
    except SipParseError:
        return None
    sdp = ""
    if msg.body and b"v=0" in msg.body[:8]:
        held = [d for d in ("sendonly", "recvonly", "inactive") if f"a={d}".encode() in msg.body]
        sdp = f" (SDP {held[0]})" if held else " (SDP)"
    if isinstance(msg, Request):
        return f"{msg.method}{sdp}"
    return f"{msg.status} {msg.reason} ({msg.cseq.method}){sdp}"


class SipLogWriter:
    """Writes each tapped message to a text file, headed by time, direction and addresses.

    Args:
        stream: the open text file (CRLF line ends written as LF).
        local: our SIP address as ``host:port``.
        wall: the clock giving seconds since the epoch (injected for tests).
    """

    def __init__(self, stream: IO[str], local: str, wall: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._local = local
        self._wall = wall
        self.count = 0

    def record(self, direction: str, data: bytes, peer: tuple[str, int]) -> None:
        """Append one message (``direction`` "out": sent to ``peer``; "in": from it)."""
        when = datetime.fromtimestamp(self._wall(), UTC).isoformat(timespec="microseconds")
        remote = f"{peer[0]}:{peer[1]}"
        arrow = f"{self._local} -> {remote}" if direction == "out" else f"{remote} -> {self._local}"
        verb = "sent" if direction == "out" else "received"
        text = data.decode("utf-8", "replace").replace("\r\n", "\n")
        self._stream.write(f"--- {when} {verb} {arrow} ({len(data)} bytes)\n{text}")
        if not text.endswith("\n"):
            self._stream.write("\n")
        self._stream.write("\n")
        self._stream.flush()  # a killed process still leaves what it saw
        self.count += 1


@attrs.define(eq=False)
class LadderRecorder:
    """Keeps a ladder entry per message (at most :data:`MAX_LADDER_ENTRIES`).

    Attributes:
        us: the name of our column.
        entries: the entries kept.
        dropped: messages seen past the limit.
    """

    us: str
    entries: list[LadderEntry] = attrs.field(factory=list)
    dropped: int = 0
    limit: int = MAX_LADDER_ENTRIES
    clock: Callable[[], float] = time.monotonic

    def record(self, direction: str, data: bytes, peer: tuple[str, int]) -> None:
        """Add one message to the ladder (unparsable ones are left out)."""
        if len(self.entries) >= self.limit:
            self.dropped += 1
            return
        label = label_of(data)
        if label is None:
            return
        remote = f"{peer[0]}:{peer[1]}"
        source, target = (self.us, remote) if direction == "out" else (remote, self.us)
        self.entries.append(LadderEntry(self.clock(), source, target, label))

    def render(self) -> str:
        """The ladder as text (times relative to the first message)."""
        if not self.entries:
            return "(no SIP messages)"
        text = render_ladder([self.us], self.entries, width=30)
        if self.dropped:
            text += f"\n({self.dropped} later messages not drawn: over {self.limit})"
        return text


class WireTap:
    """The ``--ladder``/``--sip-log`` of one command: installs the tap only when asked.

    Args:
        args: the parsed command line (``ladder``, ``sip_log``).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._want_ladder = bool(getattr(args, "ladder", False))
        self._log_path: str | None = getattr(args, "sip_log", None)
        self._file: IO[str] | None = None
        self.ladder: LadderRecorder | None = None
        self.log: SipLogWriter | None = None
        self._last = 0.0

    async def settle(self, quiet: float = 0.1, limit: float = 0.5) -> None:
        """Wait (at most ``limit`` s) until no message moved for ``quiet`` s, if tapping.

        Called after our BYE so that its 200 OK is in the log and on the ladder too
        (the call ends when the BYE is sent; the endpoint would close before the answer).
        """
        if not self.wanted:
            return
        with anyio.move_on_after(limit):
            while time.monotonic() - self._last < quiet:
                await anyio.sleep(0.02)

    @property
    def wanted(self) -> bool:
        """True when ``--ladder`` or ``--sip-log`` was given."""
        return self._want_ladder or self._log_path is not None

    def open(self) -> None:
        """Open the log file (before any socket, so a bad path is a usage error).

        Raises:
            OSError: the file cannot be written.
        """
        if self._log_path is not None:
            self._file = open(self._log_path, "w", encoding="utf-8")  # noqa: SIM115

    def attach(self, coordinator: SessionCoordinator) -> None:
        """Tap ``coordinator`` (started or not) if anything was asked for.

        The recorders are made at the first message, when the endpoint is bound and
        our address known (``rvoip register`` taps before the start, so that the first
        REGISTER is in the log).
        """
        if not self.wanted:
            return
        recorders: list[Callable[[str, bytes, tuple[str, int]], None]] = []

        def tap(direction: str, data: bytes, peer: tuple[str, int]) -> None:
            self._last = time.monotonic()
            if not recorders:
                recorders.extend(self._recorders(coordinator))
            for record in recorders:
                record(direction, data, peer)

        coordinator.set_message_tap(tap, received=True)

    def _recorders(
        self, coordinator: SessionCoordinator
    ) -> list[Callable[[str, bytes, tuple[str, int]], None]]:
        host, port = coordinator.local_sip_address
        local = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        made: list[Callable[[str, bytes, tuple[str, int]], None]] = []
        if self._file is not None:
            self.log = SipLogWriter(self._file, local)
            made.append(self.log.record)
        if self._want_ladder:
            self.ladder = LadderRecorder(f"rvoip {local}")
            made.append(self.ladder.record)
        return made

    def close(self, print_: Callable[[str], None] = print) -> None:
        """Close the log and print the ladder, if asked for."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._want_ladder:
            self._want_ladder = False
            print_("\nSIP ladder (every message sent and received, times in seconds):")
            print_("(no SIP messages)" if self.ladder is None else self.ladder.render())
