"""Graceful drain: refuse new calls, let the calls up finish, then stop.

Why: a worker behind a SIP load balancer (Kamailio's dispatcher, ``deploy/kamailio/``)
that is stopped for a deploy or a scale-in must not cut the calls it carries, and must
not lose the calls that arrive while it stops. Draining does both: from
``begin_drain()`` on, every new INVITE is answered ``503 Service Unavailable`` with a
``Retry-After`` (RFC 3261 §21.5.4), which the balancer's failure route takes as "try the
next destination", and OPTIONS are answered 405 so the balancer's health probes take the
worker out of its set; the calls already up keep running (their re-INVITEs, BYEs and media
are served as usual) until they end or ``DrainSettings.timeout`` runs out, after which
``stop()`` hangs up the rest with BYE (retransmitted until answered, see ``stop_timeout``).

The pieces:

- `DrainSettings`: the timeout and the Retry-After (safe defaults, documented in
  ``docs/security.md``).
- `DrainState`: whether the coordinator drains, since when, and the header tuple the
  call layer answers new INVITEs with (built once, not per INVITE).
- `drain_on_signal`: the ``rvoip answer --drain-timeout`` behaviour: the first SIGTERM or
  SIGINT drains, a second one (or the timeout) stops at once.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import attrs

from rvoip_session_core._errors import ConfigurationError

DEFAULT_DRAIN_TIMEOUT = 30.0
"""Seconds ``drain()`` lets the calls up run before they are hung up."""
DEFAULT_DRAIN_RETRY_AFTER = 30
"""Seconds in the Retry-After of the 503s a draining coordinator answers new INVITEs with."""
DRAIN_POLL = 0.1
"""Seconds between two looks at the number of calls up while ``drain()`` waits."""


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"DrainSettings.{attribute.name} must not be negative: {value}")


@attrs.frozen
class DrainSettings:
    """How a coordinator drains (``SessionManagerBuilder.with_drain``).

    Attributes:
        timeout: seconds ``drain()`` waits for the calls up to end by themselves before
            returning (``stop()`` then hangs the rest up); default 30. 0 returns at once.
        retry_after: seconds announced in the ``Retry-After`` of the 503 every new INVITE
            gets while draining (RFC 3261 §20.33); default 30: a draining worker is on
            its way out, so a caller or proxy should not come back to it soon.
    """

    timeout: float = attrs.field(default=DEFAULT_DRAIN_TIMEOUT, validator=_non_negative)
    retry_after: int = attrs.field(default=DEFAULT_DRAIN_RETRY_AFTER, validator=_non_negative)


@attrs.define(eq=False)
class DrainState:
    """Whether a coordinator drains (set once; a drain is never undone).

    Attributes:
        settings: the drain settings.
        started_at: the clock reading when the drain began, or None (not draining).
    """

    settings: DrainSettings = attrs.field(factory=DrainSettings)
    started_at: float | None = None

    @property
    def draining(self) -> bool:
        """True from ``begin`` on."""
        return self.started_at is not None

    def begin(self, now: float) -> tuple[tuple[str, str], ...] | None:
        """Start draining at ``now``; returns the 503's headers, or None if already draining.

        RFC 3261 §21.5.4: a server that cannot take the request for now answers 503 and
        MAY say in Retry-After when to come back.
        """
        if self.started_at is not None:
            return None
        self.started_at = now
        return (("Retry-After", str(self.settings.retry_after)),)


async def drain_on_signal(
    drain: Callable[[float], Awaitable[int]],
    scope: anyio.CancelScope,
    caught: list[int],
    timeout: float,
    say: Callable[[str], None],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """On SIGTERM/SIGINT drain for up to ``timeout`` s, then cancel ``scope``.

    A second signal while draining cancels ``scope`` at once (the calls left are hung
    up by the coordinator's stop, as without draining). Each signal is appended to
    ``caught`` (the command's exit status is 128 + the first one).

    Args:
        drain: the coordinator's ``drain`` (takes the timeout, returns the calls still up).
        scope: the cancel scope whose end stops the command.
        caught: where the signals received are recorded.
        timeout: seconds the calls may run on after the first signal.
        say: prints a progress line.
        task_status: reports when the signal handlers are installed.
    """
    try:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async with anyio.create_task_group() as tg:
                async for signum in signals:
                    caught.append(int(signum))
                    if len(caught) > 1:
                        say("second signal: hanging up the calls left")
                        break
                    tg.start_soon(_drain_then_stop, drain, scope, timeout, say)
                tg.cancel_scope.cancel()
            scope.cancel()
    except NotImplementedError:  # e.g. asyncio on Windows: Ctrl-C raises KeyboardInterrupt
        task_status.started()


async def _drain_then_stop(
    drain: Callable[[float], Awaitable[int]],
    scope: anyio.CancelScope,
    timeout: float,
    say: Callable[[str], None],
) -> None:
    say(f"draining: new calls get 503, the calls up have {timeout:g} s to end")
    left = await drain(timeout)
    say("drained" if not left else f"drain timeout: hanging up {left} call(s)")
    scope.cancel()
