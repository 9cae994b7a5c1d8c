"""Graceful drain: new INVITEs get 503 + Retry-After, the calls up run on, then stop.

In virtual time (trio's autojumping MockClock over the in-memory networks of
``VirtualCalls``), so a 30 s drain timeout costs milliseconds; the CLI's
``--drain-timeout`` over loopback UDP with a real SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import anyio
import anyio.to_thread
import pytest

from rvoip_session_core import (
    CallEnded,
    CallFailed,
    CallState,
    ConfigurationError,
    DrainSettings,
    SessionManagerBuilder,
)
from rvoip_session_core._drain import DrainState
from rvoip_session_core.testing import VirtualCalls, loopback_builder, next_event
from rvoip_sip_core import Response


@pytest.fixture
def anyio_backend() -> Any:
    """Virtual time for the in-process tests (the loopback test asks for asyncio)."""
    from rvoip_session_core.testing import virtual_time_backend

    return virtual_time_backend()


def _responses(net: VirtualCalls, status: int) -> list[Response]:
    return [m for m in net.sip.messages(status=status) if isinstance(m, Response)]


@pytest.mark.anyio
async def test_draining_refuses_new_calls_with_503_and_keeps_the_calls_up() -> None:
    async with VirtualCalls() as net:
        alice, bob = await net.add("alice"), await net.add("bob")
        first = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        await alice.wait_for_answer(first.id, 5)
        assert not bob.draining
        bob.begin_drain()
        bob.begin_drain()  # idempotent
        assert bob.draining
        second = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with pytest.raises(CallFailed) as failed:
            await alice.wait_for_answer(second.id, 5)
        assert failed.value.status == 503
        (refusal,) = _responses(net, 503)
        assert refusal.headers.get("Retry-After") == "30"  # DrainSettings' default
        assert bob.counters["drain_rejected"] == 1
        assert bob.counters["overload_rejected"] == 0
        # The call that was up is untouched: media flows, a re-INVITE (hold) works.
        await anyio.sleep(1.0)
        await alice.hold_session(first.id)
        assert (await alice.get_session(first.id)).state is CallState.OnHold
        await alice.resume_session(first.id)
        # drain() returns as soon as the last call ends by itself.
        async with anyio.create_task_group() as tg:
            tg.start_soon(alice.terminate_session, first.id)
            started = anyio.current_time()
            assert await bob.drain() == 0
        assert anyio.current_time() - started < 1.0
        assert not (await bob.list_active_sessions())


@pytest.mark.anyio
async def test_draining_fails_options_probes_so_a_balancer_takes_us_out() -> None:
    """A balancer probes with OPTIONS: 200 before the drain, 405 from it on."""
    async with VirtualCalls() as net:
        probe, bob = await net.add("probe"), await net.add("bob")
        target = net.uri(bob, "bob")
        assert (await probe.send_options(target)).status == 200
        bob.begin_drain()
        refused = await probe.send_options(target)
        assert refused.status == 405  # RFC 3261 §8.2.1, with Allow lacking OPTIONS
        assert "OPTIONS" not in (refused.headers.get("Allow") or "")
        assert "INVITE" in (refused.headers.get("Allow") or "")
        # Drained before it started: refused from the start too.
        early = net.coordinator(net.builder("carol"))
        early.begin_drain()
        async with early:
            assert (await probe.send_options(net.uri(early, "carol"))).status == 405


@pytest.mark.anyio
async def test_drain_timeout_returns_the_calls_left_and_stop_hangs_them_up() -> None:
    async with VirtualCalls() as net:
        alice = await net.add("alice")
        bob = await net.add("bob", builder=net.builder("bob").with_drain(timeout=5, retry_after=7))
        events = alice.events()
        call = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        started = anyio.current_time()
        assert await bob.drain() == 1  # the configured 5 s ran out with the call up
        assert 5.0 <= anyio.current_time() - started < 5.5
        refused = await alice.create_outgoing_call(alice.local_uri, net.uri(bob, "bob"))
        with pytest.raises(CallFailed):
            await alice.wait_for_answer(refused.id, 5)
        assert [r.headers.get("Retry-After") for r in _responses(net, 503)] == ["7"]
        await bob.stop()  # hangs up what the drain left, with BYE
        while True:
            ended = await next_event(events, CallEnded)
            assert isinstance(ended, CallEnded)
            if ended.session_id == call.id:  # (the refused call ended first)
                break
        assert ended.reason == "remote hangup"


@pytest.mark.anyio
async def test_drain_with_no_call_returns_at_once() -> None:
    async with VirtualCalls() as net:
        bob = await net.add("bob")
        started = anyio.current_time()
        assert await bob.drain(timeout=60) == 0
        assert anyio.current_time() - started < 0.5
        assert bob.draining


def test_drain_settings_validate_and_reach_the_config() -> None:
    with pytest.raises(ConfigurationError):
        DrainSettings(timeout=-1)
    with pytest.raises(ConfigurationError):
        DrainSettings(retry_after=-5)
    config = SessionManagerBuilder().with_drain(timeout=12.5, retry_after=3).config()
    assert config.drain == DrainSettings(12.5, 3)
    assert SessionManagerBuilder().config().drain == DrainSettings()
    state = DrainState(DrainSettings(retry_after=9))
    assert state.begin(1.0) == (("Retry-After", "9"),)
    assert state.begin(2.0) is None  # once only; started_at stays the first
    assert state.started_at == 1.0


def _start_answer(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("answering at sip:"), line
    return proc, line.split()[-1]


def _wait_line(proc: subprocess.Popen[str], start: str) -> str:
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        if line.startswith(start):
            return line
    raise AssertionError(f"no line starting {start!r}")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_answer_drain_timeout_over_loopback() -> None:
    """SIGTERM drains: the call up goes on, a new one gets 503, the hang-up ends it all."""
    proc, uri = _start_answer("--drain-timeout", "20")
    try:
        async with await loopback_builder("alice").build() as alice:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(call.id, 5)
            await anyio.to_thread.run_sync(_wait_line, proc, "call ")
            proc.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(_wait_line, proc, "draining:")
            refused = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            with pytest.raises(CallFailed) as failed:
                await alice.wait_for_answer(refused.id, 5)
            assert failed.value.status == 503
            assert proc.poll() is None  # still serving the call up
            assert (await alice.get_session(call.id)).state is CallState.Active
            await alice.terminate_session(call.id)  # our BYE is answered by the drainer
            with anyio.fail_after(10):
                code = await anyio.to_thread.run_sync(proc.wait)
        assert code == 143
        assert proc.stdout is not None
        assert "drained" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_second_signal_stops_a_drain_at_once() -> None:
    proc, uri = _start_answer("--drain-timeout", "60")
    try:
        async with await loopback_builder("alice").build() as alice:
            events = alice.events()
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(call.id, 5)
            await anyio.to_thread.run_sync(_wait_line, proc, "call ")
            proc.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(_wait_line, proc, "draining:")
            proc.send_signal(signal.SIGTERM)
            ended = await next_event(events, CallEnded)
            assert isinstance(ended, CallEnded)
            assert ended.reason == "remote hangup"  # the worker's BYE
            with anyio.fail_after(10):
                code = await anyio.to_thread.run_sync(proc.wait)
        assert code == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
