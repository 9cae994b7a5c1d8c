"""Opening RTP sessions: synchronously on asyncio-family loops, as a context manager anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable

import anyio
import sniffio

from ._errors import RtpError
from ._session import PacketHandler, RtpSession, RtpSessionConfig
from ._session_core import RtpSessionCore
from ._sockets import bind_session_sockets

__all__ = ["open_rtp_session", "open_rtp_session_now"]

# The RNG of sessions opened without one: the OS CSPRNG (os.urandom), so SSRCs, initial
# sequence numbers and timestamps cannot be predicted from earlier ones (a Mersenne
# Twister's state is recovered from ~624 outputs). Used per session and per RTCP
# report, never per packet; stateless, so a forked child shares nothing.
_DEFAULT_RNG: random.Random = random.SystemRandom()


def _running_asyncio_loop() -> asyncio.AbstractEventLoop:
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    # sniffio: trio names itself (also in guest mode over an asyncio loop); asyncio
    # leaves both unset, and a plain loop callback has no task to sniff.
    library = sniffio.thread_local.name or sniffio.current_async_library_cvar.get()
    if loop is None or library not in (None, "asyncio"):
        raise RtpError(
            f"open_rtp_session_now needs a running asyncio or uvloop event loop "
            f"(running: {library or 'none'}); use open_rtp_session under trio"
        )
    return loop


def _new_session(
    config: RtpSessionConfig,
    rng: random.Random | None,
    clock: Callable[[], float],
    on_packet: PacketHandler | None,
    cname: str | None = None,
) -> RtpSession:
    core = RtpSessionCore(
        rng=rng or _DEFAULT_RNG,
        clock_rate=config.clock_rate,
        payload_type=config.payload_type,
        cname=config.cname if cname is None else cname,
        session_bandwidth=config.session_bandwidth,
        rtcp_min_time=config.rtcp_min_time,
        latch=config.new_latch(),
    )
    allocator = config.port_allocator
    sockets = bind_session_sockets(config.local_host, config.port, config.rtcp_mux, allocator)
    try:
        return RtpSession(config, core, clock, on_packet, sockets)
    except BaseException:
        for sock in sockets[:2]:
            if sock is not None:
                sock.close()
        if sockets[2] is not None and allocator is not None:
            allocator.release(sockets[2])
        raise


_DEFAULT_CONFIG = RtpSessionConfig()


def open_rtp_session_now(
    config: RtpSessionConfig | None = None,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
    on_packet: PacketHandler | None = None,
    cname: str | None = None,
) -> RtpSession:
    """Open and start an RTP session at once, from synchronous code in an asyncio loop.

    No await and no task: usable from a plain callback running in a stdlib asyncio or
    uvloop event loop. Receiving, RTCP and statistics are those of
    :func:`open_rtp_session`; the caller must :meth:`RtpSession.close` it (sends the RTCP
    BYE, closes the sockets, releases the port; idempotent).

    Args:
        config: sockets, remote, SRTP and RTCP settings.
        rng: randomness for SSRC, initial sequence/timestamp and RTCP timing (default:
            the OS CSPRNG, ``random.SystemRandom``).
        clock: wall clock in seconds (arrival times, NTP timestamps).
        on_packet: optional ``handler(packet, arrival)`` instead of the receive queue.
        cname: this session's RTCP CNAME, instead of ``config.cname``: lets a caller
            that opens many sessions share one frozen config (hot path: building an
            ``RtpSessionConfig`` per call costs ~2 us).

    Raises:
        PortsExhaustedError: no port pair could be bound.
        OSError: an explicitly configured port could not be bound.
        RtpError: no asyncio event loop runs in this thread (e.g. under trio).
    """
    loop = _running_asyncio_loop()
    session = _new_session(config or _DEFAULT_CONFIG, rng, clock, on_packet, cname)
    try:
        session._start_asyncio(loop)
    except NotImplementedError:
        session._shut()
        raise RtpError(
            f"{type(loop).__name__} cannot watch sockets (no add_reader); use open_rtp_session"
        ) from None
    except BaseException:
        session._shut()
        raise
    return session


@contextlib.asynccontextmanager
async def open_rtp_session(
    config: RtpSessionConfig | None = None,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
    on_packet: PacketHandler | None = None,
) -> AsyncIterator[RtpSession]:
    """Open an RTP session; it is closed (BYE sent, port released) on exit.

    Args:
        config: sockets, remote, SRTP and RTCP settings.
        rng: randomness for SSRC, initial sequence/timestamp and RTCP timing (default:
            the OS CSPRNG, ``random.SystemRandom``).
        clock: wall clock in seconds (arrival times, NTP timestamps).
        on_packet: optional ``handler(packet, arrival)`` instead of the receive queue.

    Raises:
        PortsExhaustedError: no port pair could be bound.
        OSError: an explicitly configured port could not be bound.
    """
    if sniffio.current_async_library() == "asyncio":
        # The synchronous opener's path (readers and a loop timer, no task); datagram
        # transports only on loops that cannot watch a socket.
        loop = _running_asyncio_loop()
        session = _new_session(config or _DEFAULT_CONFIG, rng, clock, on_packet)
        try:
            try:
                session._start_asyncio(loop)
            except NotImplementedError:  # no add_reader (proactor loop): transports
                session._shut_readers()
                await session._start_transports(loop)
            yield session
        finally:
            session.close()
        return
    session = _new_session(config or _DEFAULT_CONFIG, rng, clock, on_packet)
    body_error: BaseException | None = None
    async with anyio.create_task_group() as tg:
        try:
            await session._start_trio(tg)
            yield session
        except BaseException as exc:  # re-raised below, unwrapped by the task group
            body_error = exc
        finally:
            with anyio.CancelScope(shield=True):
                await session.aclose()
            tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
