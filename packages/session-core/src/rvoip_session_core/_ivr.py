"""IVR building blocks: a prompt that says when it finished, and a DTMF digit collector.

``DigitCollector`` is sans-IO: it takes digits and ``now`` and says when it is done and
when its next deadline is; the coordinator's ``collect_digits`` is a thin loop around it
that feeds it the call's ``DtmfReceived`` events (RFC 4733 or SIP INFO alike).
``PromptSource`` wraps what a prompt plays so the coordinator's ``play_prompt`` can tell
when the last sample went to the encoder.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import anyio
import attrs
import numpy as np
from numpy.typing import NDArray

from rvoip_media_core import AudioSource
from rvoip_session_core._events import (
    CallEnded,
    DtmfReceived,
    EventSubscription,
    SessionEventType,
)
from rvoip_session_core._media import at_rate

DTMF_DIGITS = frozenset("0123456789*#ABCD")


class CollectEnd(enum.Enum):
    """Why digit collection ended."""

    MAX_DIGITS = "max_digits"
    """``max_digits`` digits were collected."""
    TERMINATOR = "terminator"
    """The terminator key was pressed (it is not part of the digits)."""
    TIMEOUT = "timeout"
    """No first digit within ``timeout``, or no next one within ``inter_digit_timeout``."""
    ENDED = "ended"
    """The call ended."""


@attrs.frozen
class CollectedDigits:
    """What ``collect_digits`` returns: the digits and why collection stopped."""

    digits: str
    end: CollectEnd


@attrs.define(eq=False)
class DigitCollector:
    """Collects DTMF digits up to a count, a terminator or a timeout (sans-IO).

    Args:
        max_digits: stop after this many digits (at least 1).
        timeout: seconds to wait for the first digit.
        inter_digit_timeout: seconds to wait for each next digit.
        started: ``now`` when collection began (the first-digit clock starts here).
        terminator: a key that ends collection without being collected ("" for none).
        initial: digits already pressed (e.g. the one that barged into a prompt).
    """

    max_digits: int
    timeout: float
    inter_digit_timeout: float
    started: float
    terminator: str = "#"
    initial: str = ""
    _digits: list[str] = attrs.field(init=False, factory=list)
    _last: float | None = attrs.field(init=False, default=None)
    _end: CollectEnd | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.max_digits < 1:
            raise ValueError("max_digits must be at least 1")
        if not (self.timeout >= 0 and self.inter_digit_timeout >= 0):
            raise ValueError("timeouts must not be negative")
        if self.terminator and self.terminator not in DTMF_DIGITS:
            raise ValueError(f"terminator {self.terminator!r} is not a DTMF key")
        for digit in self.initial:
            self.feed(digit, self.started)

    @property
    def done(self) -> bool:
        """True once collection has ended (see ``end``)."""
        return self._end is not None

    @property
    def end(self) -> CollectEnd | None:
        """Why collection ended, or None while it goes on."""
        return self._end

    @property
    def digits(self) -> str:
        """The digits collected so far (without the terminator)."""
        return "".join(self._digits)

    def result(self) -> CollectedDigits:
        """The digits and why collection ended (``TIMEOUT`` if asked before it ended)."""
        return CollectedDigits(self.digits, self._end or CollectEnd.TIMEOUT)

    def deadline(self) -> float:
        """When collection times out unless a digit comes (inf once done)."""
        if self._end is not None:
            return math.inf
        if self._last is None:
            return self.started + self.timeout
        return self._last + self.inter_digit_timeout

    def feed(self, digit: str, now: float) -> bool:
        """A digit was pressed at ``now``; returns ``done``.

        Digits after the end, and anything not a DTMF key, are ignored.
        """
        if self._end is not None or digit not in DTMF_DIGITS or len(digit) != 1:
            return self.done
        if now >= self.deadline():
            # Too late: the timeout had already passed when this digit came.
            self._end = CollectEnd.TIMEOUT
            return True
        if self.terminator and digit == self.terminator:
            self._end = CollectEnd.TERMINATOR
            return True
        self._digits.append(digit)
        self._last = now
        if len(self._digits) >= self.max_digits:
            self._end = CollectEnd.MAX_DIGITS
        return self.done

    def check(self, now: float) -> bool:
        """Whether collection is over at ``now`` (ends it with ``TIMEOUT`` when due)."""
        if self._end is None and now >= self.deadline():
            self._end = CollectEnd.TIMEOUT
        return self.done

    def call_ended(self) -> None:
        """The call is gone: collection ends with what it has."""
        if self._end is None:
            self._end = CollectEnd.ENDED


class PromptSource:
    """A prompt being played: the wrapped source, and whether it has finished.

    A source with a ``finished`` attribute (files, samples) finishes when it has given
    its last sample; one without (a tone) when ``max_samples`` have been read, if given,
    else never (the caller bounds it by time). ``at_rate`` follows the wrapped source to
    a call's rate (a file is resampled from its own rate) and shares the state.
    """

    __slots__ = ("_done", "_max", "_read", "source")

    def __init__(self, source: AudioSource, max_samples: int | None = None) -> None:
        """Wrap ``source``; ``max_samples`` bounds it (at 8 kHz)."""
        self.source = source
        self._max = max_samples
        self._read = 0
        self._done = [False]  # shared with the at_rate copies

    @property
    def finished(self) -> bool:
        """True once the prompt's last sample was read (or ``stop`` was called)."""
        return self._done[0]

    def stop(self) -> None:
        """End the prompt now: silence from the next packet time."""
        self._done[0] = True

    def read(self, n: int) -> NDArray[np.int16]:
        """The next ``n`` samples of the prompt (silence once it finished)."""
        if self._done[0]:
            return np.zeros(n, dtype=np.int16)
        data = self.source.read(n)
        self._read += n
        if getattr(self.source, "finished", False) or (
            self._max is not None and self._read >= self._max
        ):
            self._done[0] = True
        return data

    def at_rate(self, rate: int, base_rate: int = 8000) -> PromptSource:
        """This prompt at ``rate`` Hz, where it is now, sharing its ``finished``."""
        copy = PromptSource(
            at_rate(self.source, rate),
            None if self._max is None else self._max * rate // base_rate,
        )
        copy._read = self._read * rate // base_rate
        copy._done = self._done
        return copy


PROMPT_POLL = 0.02
"""How often a playing prompt is checked for its end (one packet time)."""


def _for_call(event: object, session_id: str) -> bool:
    return getattr(event, "session_id", None) == session_id


async def wait_for_prompt(
    prompt: PromptSource,
    events: EventSubscription[SessionEventType],
    session_id: str,
    ended: Callable[[], bool],
    *,
    barge_in: bool,
    deadline: float,
) -> str | None:
    """Wait for the end of a prompt.

    Returns:
        None when ``prompt`` finished, ``deadline`` passed or the call ended; with
        ``barge_in``, the first DTMF digit of the call (the prompt stops there).
    """
    while True:
        event = events.receive_nowait()
        while event is not None:
            if _for_call(event, session_id):
                if isinstance(event, CallEnded):
                    prompt.stop()
                    return None
                if barge_in and isinstance(event, DtmfReceived):
                    prompt.stop()
                    return event.digit
            event = events.receive_nowait()
        if prompt.finished or ended():
            return None
        if anyio.current_time() >= deadline:
            prompt.stop()
            return None
        await anyio.sleep(PROMPT_POLL)


async def run_collector(
    collector: DigitCollector,
    events: EventSubscription[SessionEventType],
    session_id: str,
    ended: Callable[[], bool],
) -> CollectedDigits:
    """Feed ``collector`` the call's digits until it is done (the async edge of it)."""
    while not collector.done:
        if ended():
            collector.call_ended()
            break
        now = anyio.current_time()
        if collector.check(now):
            break
        # Wake at the deadline, and at least twice a second to notice a call's end.
        with anyio.move_on_at(min(collector.deadline(), now + 0.5)):
            event = await events.recv()
            if event is None:  # the coordinator stopped
                collector.call_ended()
            elif _for_call(event, session_id):
                if isinstance(event, DtmfReceived):
                    collector.feed(event.digit, anyio.current_time())
                elif isinstance(event, CallEnded):
                    collector.call_ended()
    return collector.result()
