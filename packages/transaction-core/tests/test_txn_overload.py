"""Overload control: raw-bytes classification, the stateless 503, the AIMD admission
controller (sans-IO, simulated time) and the endpoint's receive-path screen (real UDP)."""

from __future__ import annotations

import socket
import sys

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_sip_core import Response, Via, parse_message
from rvoip_transaction_core import (
    AdmissionControl,
    OverloadConfig,
    TransactionEndpoint,
    TransactionEvent,
    TransactionRequest,
    UdpTransport,
)
from rvoip_transaction_core._overload import (
    new_request_method,
    response_port,
    stateless_503,
    top_via_key,
)


def invite(
    to_tag: str | None = None, method: str = "INVITE", call_id: str = "c1@h", port: int = 5062
) -> bytes:
    to = "To: <sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{call_id};rport\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-up\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"{to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


# ------------------------------------------------------------------ classification


def test_new_request_is_a_request_without_to_tag() -> None:
    assert new_request_method(invite()) == b"INVITE"
    assert new_request_method(invite(method="OPTIONS")) == b"OPTIONS"
    assert new_request_method(invite(to_tag="b2")) is None  # in-dialog (re-INVITE)


@pytest.mark.parametrize("method", ["ACK", "BYE", "CANCEL", "PRACK"])
def test_requests_that_finish_calls_are_never_candidates(method: str) -> None:
    assert new_request_method(invite(method=method)) is None


def test_responses_and_compact_forms() -> None:
    assert new_request_method(b"SIP/2.0 200 OK\r\nTo: <sip:x>\r\n\r\n") is None
    compact = invite().replace(b"To: ", b"t: ")
    assert new_request_method(compact) == b"INVITE"
    tagged = invite(to_tag="b2").replace(b"To: ", b"T : ").replace(b";tag=", b"; TAG = ")
    assert new_request_method(tagged) is None
    assert new_request_method(b"\r\n\r\n") is None
    assert new_request_method(b"") is None


@given(st.binary(max_size=600))
def test_raw_readers_never_raise(data: bytes) -> None:
    """Every byte from the network is hostile: the screen's readers only answer or None."""
    new_request_method(data)
    stateless_503(data, "127.0.0.1", 5060, "t", 1)


@given(
    st.sampled_from(["INVITE", "OPTIONS", "REGISTER"]), st.binary(max_size=40), st.integers(0, 400)
)
def test_mutated_requests_never_raise(method: str, junk: bytes, at: int) -> None:
    data = invite(method=method)
    at = min(at, len(data))
    mutated = data[:at] + junk + data[at:]
    found = new_request_method(mutated)
    assert found is None or mutated.startswith(found + b" ")
    built = stateless_503(mutated, "127.0.0.1", 5060, "t", 1)
    if built is not None:
        assert built[0].startswith(b"SIP/2.0 503 ")


# ------------------------------------------------------------------ the stateless 503


def test_stateless_503_copies_the_headers_and_stamps_the_top_via() -> None:
    """RFC 3261 §8.2.6 / §21.5.4 / RFC 3581: a 503 the caller's transaction matches."""
    built = stateless_503(invite(), "127.0.0.1", 40000, "shedtag", 2)
    assert built is not None
    data, top_via = built
    response = parse_message(data)
    assert isinstance(response, Response)
    assert response.status == 503
    assert response.to.tag == "shedtag"
    assert response.from_.tag == "a1"
    assert response.call_id == "c1@h"
    assert str(response.cseq) == "1 INVITE"
    assert response.headers.get("retry-after") == "2"
    vias = response.vias
    assert [v.branch for v in vias] == ["z9hG4bK-c1@h", "z9hG4bK-up"]
    assert vias[0].rport == 40000
    assert top_via.startswith(b"SIP/2.0/UDP 127.0.0.1:5062")


def test_stateless_503_adds_received_when_the_source_differs() -> None:
    built = stateless_503(invite(), "192.0.2.7", 5062, "t", 0)
    assert built is not None
    response = parse_message(built[0])
    assert isinstance(response, Response)
    assert response.vias[0].received == "192.0.2.7"
    assert response.headers.get("retry-after") is None  # retry_after=0 leaves it out


def test_stateless_503_follows_folded_lines_and_refuses_broken_requests() -> None:
    folded = invite().replace(
        b"From: <sip:alice@127.0.0.1>;tag=a1", b"From:\r\n <sip:alice@127.0.0.1>;tag=a1"
    )
    built = stateless_503(folded, "127.0.0.1", 5062, "t", 1)
    assert built is not None
    assert b"From: <sip:alice@127.0.0.1>;tag=a1" in built[0]
    assert stateless_503(invite().replace(b"Call-ID: c1@h\r\n", b""), "h", 1, "t", 1) is None
    doubled = invite().replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\n")
    assert stateless_503(doubled, "h", 1, "t", 1) is None  # the parser answers 400 instead


def test_top_via_key_matches_what_the_parser_reads() -> None:
    """The raw reading must give the key the layer stores (else a retransmission of an
    admitted INVITE would be shed): compared with sip-core's Via parser."""
    for text in [
        "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport",
        "SIP/2.0/UDP Host.Example;rport;BRANCH = z9hG4bK-2",
        "SIP/2.0/TCP 10.0.0.1:5060 ;branch=z9hG4bK-3, SIP/2.0/UDP 10.0.0.2;branch=x",
    ]:
        via = Via.parse(text.split(",")[0])
        assert top_via_key(text.encode()) == (via.branch, via.host, via.port)
    assert top_via_key(b"SIP/2.0/UDP [::1]:5060;branch=z9hG4bK-4") is None  # parsed instead
    assert top_via_key(b"SIP/2.0/UDP 127.0.0.1") is None  # no branch


@given(st.binary(max_size=200))
def test_top_via_key_never_raises(data: bytes) -> None:
    top_via_key(data)


def test_response_port_follows_rport_then_sent_by() -> None:
    """RFC 3261 §18.2.2 / RFC 3581 §4."""
    assert response_port(b"SIP/2.0/UDP 127.0.0.1:5062;rport;branch=z9hG4bK1", 40000) == 40000
    assert response_port(b"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1", 40000) == 5062
    assert response_port(b"SIP/2.0/UDP host;branch=z9hG4bK1", 40000) == 5060


# ------------------------------------------------------------------ the admission controller


BUFFER = 2 * 1024 * 1024  # the kernel's accounting of a 1 MiB SO_RCVBUF


def run_windows(control: AdmissionControl, queued: list[int], start: float = 0.0) -> float:
    """Feed one reading per ms; returns the time after the last reading."""
    now = start
    for value in queued:
        control.observe(value, BUFFER, 0, now)
        now += 0.001
    return now


def test_bursty_queue_with_short_moments_is_not_overload() -> None:
    """A queue that peaks high but empties now and then (normal at 1,500 calls/s)."""
    control = AdmissionControl(OverloadConfig())
    run_windows(control, [200_000 if i % 10 else 2_000 for i in range(2000)])
    assert control.admit_fraction == 1.0
    assert control.stats["overload_windows"] == 0


def test_standing_queue_cuts_admissions_then_they_grow_back() -> None:
    config = OverloadConfig()
    control = AdmissionControl(config)
    # a standing queue that keeps growing: cut every window
    now = run_windows(control, [500_000 + i * 1000 for i in range(300)])
    assert control.admit_fraction < 0.5
    assert control.stats["overload_windows"] >= 4
    now = run_windows(control, [1_000] * 60, now)  # the window that straddles the change
    low = control.admit_fraction
    now = run_windows(control, [1_000] * 200, now)  # ~4 short-queue windows
    assert low + config.increase <= control.admit_fraction <= low + 4 * config.increase + 1e-9
    run_windows(control, [1_000] * 5000, now)
    assert control.admit_fraction == 1.0
    assert not control.shedding


def test_a_standing_queue_that_shrinks_holds_the_fraction() -> None:
    """The queue integrates: once a cut drains it, cutting again every window overshoots."""
    config = OverloadConfig()
    control = AdmissionControl(config)
    now = run_windows(control, [500_000] * 110)  # standing for two windows: one cut
    assert control.admit_fraction == pytest.approx(config.decrease)
    draining = [500_000 - i * 800 for i in range(140)]  # still over queue_high, falling
    run_windows(control, draining, now)
    assert control.admit_fraction == pytest.approx(config.decrease)


def test_growth_slows_near_the_fraction_of_the_last_cut() -> None:
    """Past probe_from x the fraction at the last cut the steps are small for
    probe_windows calm windows (no full-speed overshoot of the capacity just found),
    then full again (the load may have gone)."""
    config = OverloadConfig()
    control = AdmissionControl(config)
    control.admit_fraction = 0.5
    now = run_windows(control, [500_000] * 110)  # two standing windows, one cut
    cut = control.admit_fraction
    assert cut == pytest.approx(0.5 * config.decrease)
    now = run_windows(control, [1_000] * 60, now)  # the straddling window
    steps = []
    for _ in range(30):
        before = control.admit_fraction
        now = run_windows(control, [1_000] * 50, now)
        steps.append(round(control.admit_fraction - before, 6))
    slow = config.increase * config.probe_step
    assert steps[0] == pytest.approx(config.increase)  # 0.4 -> 0.43 (< 0.9 x 0.5)
    assert steps[2] == pytest.approx(slow)  # 0.46 and up: >= 0.45, slow
    assert steps[-1] == pytest.approx(config.increase)  # calm long enough: full again


def test_thresholds_shrink_with_a_small_buffer() -> None:
    """Where the kernel grants only the default 208 KiB, a quarter of it is a standing
    queue (the configured 384 KiB could never be reached)."""
    control = AdmissionControl(OverloadConfig())
    now = 0.0
    for _ in range(110):
        control.observe(60_000, 212_992, 0, now)
        now += 0.001
    assert control.admit_fraction < 1.0


def test_one_standing_window_is_a_pause_not_overload() -> None:
    """A pause of the process (cold start, full collection) leaves one window with a
    standing queue that drains by itself: no cut for it (the base endpoint absorbed
    such pauses without a failed call; cutting for them shed calls at 1x)."""
    control = AdmissionControl(OverloadConfig())
    now = run_windows(control, [1_000] * 60)
    now = run_windows(control, [600_000] * 50, now)  # the pause's backlog
    run_windows(control, [600_000 - i * 10_000 for i in range(60)], now)  # drained
    assert control.admit_fraction == 1.0


def test_a_surge_cuts_harder() -> None:
    config = OverloadConfig()
    control = AdmissionControl(config)
    run_windows(control, [config.queue_severe] * 60)
    assert control.admit_fraction == pytest.approx(config.severe)


def test_kernel_drops_count_as_overload_even_with_a_short_queue() -> None:
    control = AdmissionControl(OverloadConfig())
    now = run_windows(control, [0] * 60)
    control.observe(0, BUFFER, 5, now)  # the kernel dropped 5 datagrams since the last reading
    run_windows(control, [0] * 60, now + 0.001)
    assert control.admit_fraction == pytest.approx(OverloadConfig().severe)
    assert control.stats["overload_drops_seen"] == 1
    off = AdmissionControl(OverloadConfig(shed_on_drops=False))
    now = run_windows(off, [0] * 60)
    off.observe(0, BUFFER, 5, now)
    run_windows(off, [0] * 60, now + 0.001)
    assert off.admit_fraction == 1.0


def test_admissions_are_spread_evenly_and_never_under_min_admit() -> None:
    control = AdmissionControl(OverloadConfig(min_admit=0.25))
    run_windows(control, [1_500_000] * 3000)
    assert control.admit_fraction == 0.25
    admitted = [control.admit() for _ in range(100)]
    assert sum(admitted) == 25
    assert admitted[3::4] == [True] * 25  # one in four, evenly spaced


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        OverloadConfig(queue_low=10, queue_high=5)
    with pytest.raises(ValueError):
        OverloadConfig(queue_severe=5)
    with pytest.raises(ValueError):
        OverloadConfig(decrease=1.0)
    with pytest.raises(ValueError):
        OverloadConfig(window=0)
    with pytest.raises(ValueError):
        OverloadConfig(min_admit=2.0)
    with pytest.raises(ValueError):
        OverloadConfig(severe=0.9)  # a surge must cut at least as hard as a standing queue


# ------------------------------------------------------------------ the endpoint's screen


def shedding_endpoint(seen: list[TransactionEvent]) -> TransactionEndpoint:
    # window far away: no decision moves the fraction during the test
    config = OverloadConfig(window=1000.0, min_admit=0.0)
    return TransactionEndpoint(on_event=seen.append, overload=config)


@pytest.mark.anyio
async def test_endpoint_sheds_new_invites_with_a_stateless_503() -> None:
    """Regression (issue 10, overload collapse): past saturation every new INVITE was
    parsed, got a transaction and a call, and the backlog starved the ACKs and BYEs of
    the calls in progress; goodput fell from ~1,600 to ~70 calls/s at 3x the saturation
    rate. While overloaded, a new INVITE is now answered 503 + Retry-After from its raw
    bytes, without any transaction or TU event; the ACK of that 503 is dropped; a BYE
    still reaches the transaction layer."""
    seen: list[TransactionEvent] = []
    async with shedding_endpoint(seen) as endpoint:
        admission = endpoint._admission
        assert admission is not None
        admission.admit_fraction = 0.0
        target = endpoint.local()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            port = sock.getsockname()[1]
            sock.sendto(invite(port=port), (target.host, target.port))
            data = await anyio.to_thread.run_sync(sock.recv, 65535)
            response = parse_message(data)
            assert isinstance(response, Response)
            assert response.status == 503
            assert response.headers.get("retry-after") == "1"
            to_tag = response.to.tag
            assert to_tag is not None
            ack = invite(to_tag=to_tag, method="ACK", port=port)
            sock.sendto(ack, (target.host, target.port))
            sock.sendto(
                invite(to_tag="x", method="BYE", call_id="c2@h", port=port),
                (target.host, target.port),
            )
            with anyio.fail_after(5):
                while not any(isinstance(e, TransactionRequest) for e in seen):
                    await anyio.sleep(0.01)
        stats = endpoint.stats
        assert stats["shed_invite"] == 1
        assert stats["absorbed_shed_ack"] == 1
        assert len(endpoint.layer) == 1  # the BYE's transaction only
        requests = [e for e in seen if isinstance(e, TransactionRequest)]
        assert [e.request.method for e in requests] == ["BYE"]


@pytest.mark.anyio
async def test_endpoint_admits_everything_when_not_overloaded_or_disabled() -> None:
    for config in (OverloadConfig(), OverloadConfig(enabled=False)):
        seen: list[TransactionEvent] = []
        async with TransactionEndpoint(on_event=seen.append, overload=config) as endpoint:
            assert (endpoint._admission is None) is (not config.enabled)
            target = endpoint.local()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                sock.sendto(invite(port=sock.getsockname()[1]), (target.host, target.port))
                with anyio.fail_after(5):
                    while not seen:
                        await anyio.sleep(0.01)
            assert isinstance(seen[0], TransactionRequest)
            assert not any(key.startswith("shed_") for key in endpoint.stats)


@pytest.mark.anyio
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_MEMINFO is Linux-only")
async def test_udp_transport_reads_its_receive_queue() -> None:
    """The backlog signal: SO_MEMINFO through the loop's socket (asyncio) or the raw one (trio)."""
    async with TransactionEndpoint() as endpoint:
        udp = endpoint.transports["UDP"]
        assert isinstance(udp, UdpTransport)
        reading = udp.receive_queue()
        assert reading is not None
        queued, capacity, drops = reading
        assert queued >= 0
        assert capacity > 0
        assert drops == 0
        granted = udp.set_receive_buffer(512 * 1024)
        assert granted is not None
        assert granted > 0


def test_overload_is_on_by_default() -> None:
    """An app built with the defaults never collapses: the control is on unless disabled."""
    assert TransactionEndpoint()._admission is not None
    assert attrs.evolve(OverloadConfig(), enabled=False).enabled is False


@pytest.mark.anyio
async def test_retransmission_of_an_admitted_invite_is_not_shed() -> None:
    """An admitted call's INVITE retransmission must reach its transaction, not get a 503
    (the caller would take the 503 as the final answer of a call we are setting up)."""
    seen: list[TransactionEvent] = []
    async with shedding_endpoint(seen) as endpoint:
        admission = endpoint._admission
        assert admission is not None
        target = endpoint.local()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            request = invite(port=sock.getsockname()[1])
            sock.sendto(request, (target.host, target.port))
            with anyio.fail_after(5):
                while not seen:
                    await anyio.sleep(0.01)
            admission.admit_fraction = 0.0  # overloaded from now on
            sock.sendto(request, (target.host, target.port))  # the retransmission
            with anyio.fail_after(5):
                while not endpoint.stats.get("absorbed_request_retransmission"):
                    await anyio.sleep(0.01)
        stats = endpoint.stats
        assert stats["overload_passed_retransmission"] == 1
        assert "shed_invite" not in stats
