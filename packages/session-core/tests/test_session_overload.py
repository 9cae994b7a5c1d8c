"""Overload control: new INVITEs get 503 + Retry-After past a call cap or while the loop lags."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import (
    AutoAnswerHandler,
    CallFailed,
    ConfigurationError,
    SessionManagerBuilder,
)
from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._overload import LagMonitor, overloaded, watch_loop_lag
from rvoip_session_core.testing import SipTrace, loopback_builder, released, uri_of, wait_until

# --- the kernel ------------------------------------------------------------------------


def test_lag_monitor_trips_above_the_threshold_and_recovers_at_half() -> None:
    monitor = LagMonitor(0.1)
    assert not monitor.observe(0.09)
    assert monitor.observe(0.15)
    assert monitor.observe(0.07)  # between half and the threshold: still overloaded
    assert not monitor.observe(0.05)
    assert monitor.lateness == 0.05


def test_an_injected_lateness_replaces_every_measurement() -> None:
    monitor = LagMonitor(0.1, injected=0.5)
    assert monitor.observe(0.0)
    monitor.injected = 0.0
    assert not monitor.observe(3.0)


@given(
    threshold=st.floats(0.001, 10.0),
    high=st.floats(0.0, 100.0),
    low=st.floats(0.0, 100.0),
)
def test_lag_monitor_state_follows_the_last_clear_measurement(
    threshold: float, high: float, low: float
) -> None:
    monitor = LagMonitor(threshold)
    assert monitor.observe(high) == (high > threshold)
    before = monitor.overloaded
    after = monitor.observe(low)
    if low > threshold:
        assert after
    elif low <= threshold / 2:
        assert not after
    else:
        assert after == before


@given(active=st.integers(0, 1000), cap=st.none() | st.integers(1, 1000), lagging=st.booleans())
def test_overloaded_is_the_cap_or_the_lag(active: int, cap: int | None, lagging: bool) -> None:
    lag = LagMonitor(0.1, overloaded=lagging)
    expected = (cap is not None and active >= cap) or lagging
    assert overloaded(active, cap, lag) == expected
    assert overloaded(active, cap, None) == (cap is not None and active >= cap)


@pytest.mark.anyio
async def test_the_lag_timer_feeds_its_lateness() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.3  # every reading is later than the last: each wake-up looks late
        return now[0]

    monitor = LagMonitor(0.1)
    with anyio.move_on_after(0.2):
        await watch_loop_lag(monitor, 0.001, clock)
    assert monitor.overloaded
    assert monitor.lateness == pytest.approx(0.3 - 0.001)  # read 0.3 s after a 1 ms sleep


def test_builder_validates_and_carries_the_settings() -> None:
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_max_concurrent_calls(0)
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_overload_lag(0)
    with pytest.raises(ConfigurationError):
        SessionManagerBuilder().with_overload_lag(0.1, retry_after=-1)
    config = (
        SessionManagerBuilder()
        .with_max_concurrent_calls(5)
        .with_overload_lag(0.2, retry_after=3)
        .config()
    )
    assert (config.max_concurrent_calls, config.overload_lag) == (5, 0.2)
    assert config.overload_retry_after == 3
    default = SessionManagerBuilder().config()
    assert (default.max_concurrent_calls, default.overload_lag) == (1000, None)


# --- on loopback -----------------------------------------------------------------------


async def _refused(alice: SessionCoordinator, bob: SessionCoordinator) -> CallFailed:
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
    with pytest.raises(CallFailed) as info:
        await alice.wait_for_answer(call.id, 5)
    return info.value


@pytest.mark.anyio
async def test_calls_beyond_the_cap_get_503_with_retry_after() -> None:
    trace = SipTrace()
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").with_max_concurrent_calls(1).build() as bob,
    ):
        trace.attach(bob, "bob")
        first = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(first.id, 5)
        refused = await _refused(alice, bob)
        assert refused.status == 503
        assert bob.counters["overload_rejected"] == 1
        (response,) = trace.responses(503)
        assert response.headers.get("Retry-After") == "1"
        assert len(bob.registry) == 1  # the refused INVITE left no call behind
        await alice.terminate_session(first.id)
        assert await wait_until(lambda: not len(bob.registry))
        again = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(again.id, 5)  # below the cap again: answered
        await alice.terminate_session(again.id)
        assert await wait_until(lambda: released(alice) and released(bob))
        assert bob.counters["overload_rejected"] == 1


@pytest.mark.anyio
async def test_calls_are_refused_while_the_loop_lags_and_taken_once_it_recovers() -> None:
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").with_overload_lag(0.1, retry_after=7).build() as bob,
    ):
        lag = bob.loop_lag
        assert lag is not None
        lag.injected = 0.5  # the injected lag source: every measurement reads 0.5 s late
        lag.observe(0.0)
        trace = SipTrace()
        trace.attach(bob, "bob")
        refused = await _refused(alice, bob)
        assert refused.status == 503
        (response,) = trace.responses(503)
        assert response.headers.get("Retry-After") == "7"
        assert bob.counters["overload_rejected"] == 1
        lag.injected = 0.0
        lag.observe(0.0)
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: released(alice) and released(bob))


@pytest.mark.anyio
async def test_the_answer_command_caps_concurrent_calls() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rvoip_session_core",
            "answer",
            "--port",
            "0",
            "--quiet",
            "--max-concurrent",
            "1",
            "--overload-lag",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.startswith("answering at sip:"), line
        uri = line.split()[-1]
        async with await loopback_builder("alice").build() as alice:
            first = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(first.id, 5)
            second = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            with pytest.raises(CallFailed) as info:
                await alice.wait_for_answer(second.id, 5)
            assert info.value.status == 503
            await alice.terminate_session(first.id)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("argv", "cap"),
    [([], 1000), (["--max-concurrent", "5"], 5), (["--max-concurrent", "0"], None)],
)
def test_rvoip_answer_keeps_the_default_call_cap_unless_told(
    argv: list[str], cap: int | None
) -> None:
    """`rvoip answer` without --max-concurrent passed None to the builder, which turned the
    1,000-call default cap off: the CLI ran uncapped. Now the default stands; 0 means none."""
    from rvoip_session_core._cli_commands import answer_builder
    from rvoip_session_core.cli import _build_parser

    args = _build_parser().parse_args(["answer", "--port", "0", *argv])
    config = answer_builder(args, AutoAnswerHandler()).config()
    assert config.max_concurrent_calls == cap


def test_cli_flags_reach_rtp_latching_and_overload_control() -> None:
    """--rtp-latch and --no-overload-control end up in the coordinator's config."""
    from rvoip_session_core._cli_commands import answer_builder
    from rvoip_session_core.cli import _build_parser

    args = _build_parser().parse_args(["answer", "--port", "0"])
    config = answer_builder(args, AutoAnswerHandler()).config()
    assert config.rtp_latch == "strict"
    assert config.overload.enabled
    argv = ["answer", "--port", "0", "--rtp-latch", "learn", "--no-overload-control"]
    config = answer_builder(_build_parser().parse_args(argv), AutoAnswerHandler()).config()
    assert config.rtp_latch == "learn"
    assert not config.overload.enabled


def test_builder_checks_the_rtp_latching_mode() -> None:
    with pytest.raises(ConfigurationError, match="latching"):
        SessionManagerBuilder().with_rtp_latching("loose")  # type: ignore[arg-type]
    assert SessionManagerBuilder().with_rtp_latching("off").config().rtp_latch == "off"


@pytest.mark.anyio
async def test_sip_stats_count_what_the_stack_below_saw() -> None:
    """``sip_stats()`` exposes the transaction/transport/dialog counters of a coordinator."""
    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
    ):
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        await alice.wait_for_answer(call.id, 5)
        await alice.terminate_session(call.id)
        assert await wait_until(lambda: released(alice) and released(bob))
        stats = bob.sip_stats()
        assert stats["udp_received"] >= 3  # INVITE, ACK, BYE
        assert stats["udp_sent"] >= 2  # 200 to the INVITE, 200 to the BYE
