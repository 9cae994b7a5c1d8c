"""``rvoip demo``: three endpoints on 127.0.0.1 run a scripted call and verify each step.

Alice calls Bob and plays a tone, sends DTMF, holds and resumes; Bob transfers Alice to
Carol; everyone hangs up. Each step is checked (audio detected after decode, digits
received, transfer completed) and the run ends with a SIP ladder and a quality report.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import attrs

from rvoip_session_core._coordinator import SessionCoordinator
from rvoip_session_core._errors import SessionError
from rvoip_session_core._events import DtmfReceived
from rvoip_session_core._media import tone_source
from rvoip_session_core._types import CallState, MediaStatistics
from rvoip_session_core.testing import SipTrace, count_tone_frames, loopback_builder, uri_of

TONE_HZ = 1000.0
DIGITS = "159#"


@attrs.define
class Step:
    """One verified step of the demo."""

    name: str
    ok: bool
    detail: str


@attrs.define
class DemoReport:
    """What the demo did: its steps, the ladder and per-leg statistics."""

    steps: list[Step] = attrs.field(factory=list)
    legs: list[tuple[str, MediaStatistics | None]] = attrs.field(factory=list)
    ladder: str = ""

    @property
    def ok(self) -> bool:
        """True when every step was verified."""
        return bool(self.steps) and all(s.ok for s in self.steps)


async def _active(coordinator: SessionCoordinator, count: int, timeout: float = 5.0) -> list[str]:
    ids: list[str] = []
    with anyio.move_on_after(timeout):
        while True:
            sessions = await coordinator.list_active_sessions()
            ids = [s.id for s in sessions if s.state is CallState.Active]
            if len(ids) >= count:
                break
            await anyio.sleep(0.01)
    return ids


async def _tone_heard(coordinator: SessionCoordinator, session_id: str) -> tuple[bool, str]:
    hits, total = await count_tone_frames(coordinator, session_id, TONE_HZ, 0.5)
    return hits > total // 2 and total > 0, f"{TONE_HZ:.0f} Hz heard in {hits}/{total} frames"


async def _leg_stats(
    a: SessionCoordinator, a_id: str, b: SessionCoordinator, b_id: str
) -> MediaStatistics | None:
    # One RTCP exchange each way so that RTT (RFC 3550 §6.4.1 LSR/DLSR) is known.
    for coordinator, sid in ((a, a_id), (b, b_id), (a, a_id)):
        await coordinator.send_rtcp_report(sid)
        await anyio.sleep(0.03)
    return await a.get_media_statistics(a_id)


async def run_demo(log: Callable[[str], None] = print) -> DemoReport:
    """Run the scripted three-party demo; returns the report (never raises SessionError)."""
    report = DemoReport()
    trace = SipTrace()

    def step(name: str, ok: bool, detail: str) -> bool:
        report.steps.append(Step(name, ok, detail))
        log(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}")
        return ok

    async with (
        await loopback_builder("alice").build() as alice,
        await loopback_builder("bob").build() as bob,
        await loopback_builder("carol").build() as carol,
    ):
        for coordinator, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
            trace.attach(coordinator, name)
        try:
            await _script(alice, bob, carol, step, report)
        except (SessionError, TimeoutError) as exc:
            step("scenario", False, f"stopped by {type(exc).__name__}: {exc}")
        report.ladder = trace.ladder()
    return report


async def _script(
    alice: SessionCoordinator,
    bob: SessionCoordinator,
    carol: SessionCoordinator,
    step: Callable[[str, bool, str], bool],
    report: DemoReport,
) -> None:
    bob_events = bob.events()
    started = time.monotonic()
    call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
    await alice.wait_for_answer(call.id, 5)
    took = (time.monotonic() - started) * 1000
    bob_ids = await _active(bob, 1)
    if not step("alice calls bob", len(bob_ids) == 1, f"answered in {took:.0f} ms"):
        return
    bob_id = bob_ids[0]
    await alice.set_audio_source(call.id, tone_source(TONE_HZ))
    await anyio.sleep(0.1)
    step("audio alice -> bob", *await _tone_heard(bob, bob_id))

    await alice.send_dtmf(call.id, DIGITS)
    digits = ""
    with anyio.move_on_after(3.0):
        async for event in bob_events:
            if isinstance(event, DtmfReceived) and event.session_id == bob_id:
                digits += event.digit
                if len(digits) == len(DIGITS):
                    break
    step("DTMF (RFC 4733)", digits == DIGITS, f"sent {DIGITS!r}, bob received {digits!r}")

    await alice.hold_session(call.id)
    await anyio.sleep(0.3)  # the jitter buffer (up to 12 frames) plays out
    hits, total = await count_tone_frames(bob, bob_id, TONE_HZ, 0.4)
    held = (await alice.get_session(call.id)).state is CallState.OnHold
    step("hold", held and hits == 0, f"state OnHold, tone in {hits}/{total} frames at bob")
    await alice.resume_session(call.id)
    await anyio.sleep(0.15)
    ok, detail = await _tone_heard(bob, bob_id)
    step("resume", ok, detail)
    report.legs.append(("alice, call with bob", await _leg_stats(alice, call.id, bob, bob_id)))
    report.legs.append(("bob, call with alice", await _leg_stats(bob, bob_id, alice, call.id)))

    carol_uri = uri_of(carol, "carol")
    await bob.transfer_session(bob_id, carol_uri)
    status = await bob.wait_for_transfer(bob_id, 10)
    carol_ids = await _active(carol, 1)
    alice_ids = await _active(alice, 1)
    with anyio.move_on_after(3.0):
        while await bob.list_active_sessions():
            await anyio.sleep(0.01)
    bob_done = not await bob.list_active_sessions()
    step(
        "bob transfers alice to carol",
        status == 200 and len(carol_ids) == 1 and bob_done,
        f"NOTIFY final status {status}, bob's leg ended: {bob_done}",
    )
    alice_ids = [s for s in alice_ids if s != call.id]
    if not step(
        "alice talks to carol",
        len(carol_ids) == 1 and len(alice_ids) == 1,
        f"alice calls {alice_ids}, carol calls {carol_ids}",
    ):
        return
    new_call = alice_ids[0]
    await alice.set_audio_source(new_call, tone_source(TONE_HZ))
    await anyio.sleep(0.1)
    step("audio alice -> carol", *await _tone_heard(carol, carol_ids[0]))
    report.legs.append(
        ("alice, call with carol", await _leg_stats(alice, new_call, carol, carol_ids[0]))
    )
    report.legs.append(
        ("carol, call with alice", await _leg_stats(carol, carol_ids[0], alice, new_call))
    )

    await alice.terminate_session(new_call)
    await anyio.sleep(0.1)
    left = [len(await c.list_active_sessions()) for c in (alice, bob, carol)]
    step("all hang up", left == [0, 0, 0], f"active sessions left {left}")


def format_quality(legs: list[tuple[str, MediaStatistics | None]]) -> str:
    """A table of MOS, R, loss, jitter, RTT and packet counts per leg."""
    columns = ("MOS", 6), ("R", 7), ("loss %", 8), ("jitter", 10), ("RTT", 10), ("sent", 7)
    head = (
        f"  {'endpoint, leg':<24}" + "".join(f"{name:>{w}}" for name, w in columns) + f"{'recv':>7}"
    )
    lines = [head]
    for name, stats in legs:
        if stats is None or stats.quality_metrics is None:
            lines.append(f"  {name:<24}  (no media statistics)")
            continue
        q = stats.quality_metrics
        mos = "-" if q.mos_score is None else f"{q.mos_score:.2f}"
        r = "-" if q.r_factor is None else f"{q.r_factor:.1f}"
        rtt = "-" if q.round_trip_ms is None else f"{q.round_trip_ms:.2f}ms"
        lines.append(
            f"  {name:<24}{mos:>6}{r:>7}{q.packet_loss_percent:>8.2f}{q.jitter_ms:>8.2f}ms"
            f"{rtt:>10}{stats.packets_sent:>7}{stats.packets_received:>7}"
        )
    return "\n".join(lines)
