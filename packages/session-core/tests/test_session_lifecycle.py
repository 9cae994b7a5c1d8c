"""Coordinator lifecycle: start/stop in any order and from any task, on every event loop."""

from __future__ import annotations

import anyio
import pytest

from rvoip_session_core import InvalidState, SessionCoordinator
from rvoip_session_core.testing import loopback_builder, uri_of

ASYNCIO_LOOPS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
]
ALL_LOOPS = [*ASYNCIO_LOOPS, pytest.param("trio", id="trio")]


async def _two() -> tuple[SessionCoordinator, SessionCoordinator]:
    return await loopback_builder("a").build(), await loopback_builder("b").build()


async def _call_works(a: SessionCoordinator, b: SessionCoordinator) -> None:
    call = await a.create_outgoing_call("sip:a@127.0.0.1", uri_of(b, "b"))
    await a.wait_for_answer(call.id, 5)
    await a.terminate_session(call.id)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ASYNCIO_LOOPS)
async def test_two_coordinators_started_a_b_and_stopped_a_b() -> None:
    """Regression: ``start()`` entered a task group in the caller's task and ``stop()`` left
    it, so stopping A before B (what a user writes) crashed with "RuntimeError: Attempted to
    exit a cancel scope that isn't the current task's current cancel scope"; only LIFO order
    worked. Each coordinator now runs in a runner task of its own on asyncio/uvloop."""
    a, b = await _two()
    await a.start()
    await b.start()
    await _call_works(a, b)
    await a.stop()
    assert not a.is_running
    assert b.is_running
    await b.stop()
    assert not b.is_running


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ASYNCIO_LOOPS)
async def test_many_coordinators_in_any_order_and_stopped_from_other_tasks() -> None:
    coordinators = [await loopback_builder(f"u{i}").build() for i in range(4)]
    for c in coordinators:
        await c.start()
    async with anyio.create_task_group() as tg:
        for c in (coordinators[2], coordinators[0], coordinators[3], coordinators[1]):
            tg.start_soon(c.stop)  # stop() from another task than start()
    assert not any(c.is_running for c in coordinators)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ASYNCIO_LOOPS)
async def test_stop_after_the_scope_that_started_it_has_ended() -> None:
    a, b = await _two()

    async def starter() -> None:
        await a.start()
        await b.start()

    async with anyio.create_task_group() as tg:
        tg.start_soon(starter)  # this task ends right after start()
    await _call_works(a, b)
    await b.stop()
    await a.stop()
    await a.stop()  # idempotent


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ALL_LOOPS)
async def test_run_in_a_task_group_and_stop_from_anywhere() -> None:
    """The structured form on every loop (trio's nursery too): ``tg.start(coordinator.run)``."""
    a, b = await _two()
    async with anyio.create_task_group() as tg:
        await tg.start(a.run)
        await tg.start(b.run)
        assert a.is_running
        assert b.is_running
        await _call_works(a, b)
        await a.stop()  # not LIFO, and not from the task running it
        await b.stop()
    assert not (a.is_running)
    assert not (b.is_running)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ALL_LOOPS)
async def test_async_with_stays_the_structured_way() -> None:
    a, b = await _two()
    async with a, b:
        await _call_works(a, b)
    assert not (a.is_running)
    assert not (b.is_running)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [pytest.param("trio", id="trio")])
async def test_trio_start_stop_out_of_order_is_a_clear_error() -> None:
    """trio has no task outside a nursery: ``start()`` runs the coordinator in the calling
    task, so stopping A before B would tear a cancel scope out of order. That is refused
    with an InvalidState saying what to do instead, and the LIFO order still works."""
    a, b = await _two()
    await a.start()
    await b.start()
    with pytest.raises(InvalidState, match=r"nursery\.start"):
        await a.stop()
    assert a.is_running
    await b.stop()
    await a.stop()
    assert not (a.is_running)
    assert not (b.is_running)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [pytest.param("trio", id="trio")])
async def test_trio_stop_from_another_task_is_a_clear_error() -> None:
    a = await loopback_builder("a").build()
    await a.start()
    errors: list[BaseException] = []

    async def stopper() -> None:
        try:
            await a.stop()
        except InvalidState as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(stopper)
    assert len(errors) == 1
    assert a.is_running
    await a.stop()
    assert not a.is_running


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ALL_LOOPS)
async def test_a_failed_start_raises_the_bind_error() -> None:
    from rvoip_session_core import TransportError

    async with await loopback_builder("a").build() as a:
        port = a.local_sip_address[1]
        clash = await loopback_builder("b").with_sip_port(port).build()
        with pytest.raises(TransportError, match="cannot bind"):
            await clash.start()
        assert not clash.is_running


@pytest.mark.anyio
async def test_a_sip_port_in_use_is_a_transport_error_on_every_loop() -> None:
    """A coordinator whose TCP port is taken (UDP free) raised "Nursery misnesting
    detected!" under trio instead of TransportError (transaction-core's clean-up bug)."""
    import socket

    from rvoip_session_core import SessionManagerBuilder, TransportError

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    builder = SessionManagerBuilder().with_local_address("sip:a@127.0.0.1").with_sip_port(port)
    try:
        with pytest.raises(TransportError, match=str(port)):
            async with await builder.build():
                pass
    finally:
        taken.close()
