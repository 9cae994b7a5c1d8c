#!/usr/bin/env python3
"""tools/bench/concurrent.py: N calls held with G.711 audio both ways between two rvoip processes.

    .venv/bin/python tools/bench/concurrent.py [--calls 500] [--seconds 10] [--setup-rate 100]
        [--loop asyncio|uvloop] [--no-pin] [--rt] [--no-gc-freeze] [--tracemalloc] [--quick]

One process is ``rvoip answer --auto --tone 440`` (pinned to CPU 0); this process is the
caller (pinned to CPU 1): a SessionCoordinator places ``--calls`` calls to it at
``--setup-rate`` calls/s, plays a 1 kHz tone on each, holds them all for ``--seconds``
and hangs up. Every call then carries 50 packets/s each way (PCMU, or ``--codec
g722|opus|pcma``), through each
process's media engine (jitter buffer, decode, PLC, encode, RTCP).

Printed for the hold window: the caller's late packets (the media clock's counter:
packets sent more than 10 ms after their slot) and late ticks, loss seen by the calls
(since set-up, and within the window from the RTP counters),
CPU per call (ms of CPU per second of call, and % of a core per 100 calls) for both
processes, and memory per call (RSS after set-up minus RSS before, / N; with
``--tracemalloc`` also Python-heap bytes per call in the caller).
The caller's late-packet counter is read from the coordinator's media clock
(``coordinator.media_manager.clock_stats``).

"Late" is unchanged from the media clock's definition: a packet handed to the socket more
than 10 ms after its scheduled send time — half a packet time, far inside any receiver's
jitter buffer (2-12 frames here) but a clear sign of a stalled clock. A stream's scheduled
times are its own 20 ms grid: above 200 streams the clock spreads the streams over 4
phases 5 ms apart (stream id % 4), and a packet is measured against its phase's time,
which is when that stream's packet is due (its RTP timestamps advance 160 per 20 ms on
that grid; no frame is read before its slot).

The machine is shared with other jobs, and a process that waits for a CPU sends late
whatever it does. So the caller samples, every 100 ms, its own run-queue wait (schedstat)
and the clock's counters, and also prints the late share over the "quiet" intervals only:
those in which (and in the one before which) it waited less than 2 ms for a CPU. Both
figures are printed; the quiet one says what the media path does on its own core, the
overall one what this run got. On a machine busy with other jobs, ``--rt`` (Linux, root)
runs both processes SCHED_FIFO (priority 10; the answerer inherits it): other load then
cannot delay them, and the figure measures the media path rather than the neighbours.
It takes no more CPU than a normal run (both processes are event-driven; the kernel
keeps 5 % for others even if one spun). That reserve cuts both ways: a process that
needs more than 95 % of its core (co-running jobs can slow a core's work by a third)
is stopped for the rest of each second, a ~50 ms stall that shows as run-queue wait
and as p99 lateness near 50 ms; such a run measures the machine, not the media path.
Also printed: send-lateness percentiles over the window,
and the caller's garbage-collector pauses (count and longest, per generation). After the
calls are set up the caller calls ``gc.freeze()`` (``--no-gc-freeze`` to compare): the
objects of 500 calls then no longer make every full collection walk them all.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import shlex
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio
from _sipp_run import (
    Server,
    cpu_plan,
    free_udp_port,
    proc_rss_kib,
    quiet_flag,
    run_queue_wait,
)

from rvoip_session_core import SessionManagerBuilder, tone_source


def answer_command(
    port: int, loop: str = "asyncio", srtp: str = "off", codec: str = "pcmu"
) -> list[str]:
    """``rvoip answer --auto`` sending a tone (the console script next to the interpreter)."""
    args = ["answer", "--auto", "--port", str(port), "--host", "127.0.0.1", "--tone", "440"]
    args += ["--codecs", codec]
    args += quiet_flag()
    if srtp != "off":
        args += ["--srtp", srtp]
    # The CLI picks uvloop when installed; name the loop so the run measures what it says.
    args += ["--loop", loop]
    script = Path(sys.executable).with_name("rvoip")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "rvoip_session_core", *args]


RT_PRIORITY = 10


def real_time() -> bool:
    """Switch this process (and children started later) to SCHED_FIFO; False if refused."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    except OSError:
        return False
    return True


def _clock_counts(coordinator: Any) -> tuple[int, int, int]:
    stats = coordinator.media_manager.clock_stats
    if stats is None:
        return 0, 0, 0
    return int(stats.packets), int(stats.late_packets), int(stats.late_ticks)


def _clock_histogram(coordinator: Any) -> list[int]:
    stats = coordinator.media_manager.clock_stats
    return list(stats.histogram) if stats is not None else []


def _percentile(histogram: list[int], p: float, bin_s: float = 0.0001) -> float:
    """Lateness (s) below which ``p`` % of the histogram's packets were sent."""
    total = sum(histogram)
    if not total:
        return float("nan")
    wanted, seen = total * p / 100.0, 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= wanted:
            return (index + 1) * bin_s
    return len(histogram) * bin_s


class GcPauses:
    """Collector pauses of this process, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]
        self.total = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        gen = info.get("generation", 2)
        self.count[gen] += 1
        self.longest[gen] = max(self.longest[gen], pause)
        self.total += pause


class QuietSampler:
    """Every 100 ms: this process's run-queue wait and the media clock's counters.

    ``quiet()`` sums packets and late packets over the intervals in which (and in the
    one before which) the process waited less than ``max_wait`` seconds for a CPU.
    """

    def __init__(self, coordinator: Any, period: float = 0.1, max_wait: float = 0.002) -> None:
        self.coordinator = coordinator
        self.period = period
        self.max_wait = max_wait
        self.samples: list[tuple[float, int, int]] = []

    def sample(self) -> None:
        packets, late, _ticks = _clock_counts(self.coordinator)
        self.samples.append((run_queue_wait(os.getpid()), packets, late))

    async def run(self) -> None:
        while True:
            self.sample()
            await anyio.sleep(self.period)

    def late_by_second(self) -> list[int]:
        """Late packets in each second of the window (where they cluster says why)."""
        per = round(1.0 / self.period)
        rows = self.samples
        return [
            rows[min(i + per, len(rows) - 1)][2] - rows[i][2] for i in range(0, len(rows) - 1, per)
        ]

    def quiet(self) -> tuple[int, int, int, int]:
        """(quiet packets, quiet late packets, quiet intervals, intervals)."""
        packets = late = quiet = 0
        prev_ok = False
        rows = self.samples
        for (w0, p0, l0), (w1, p1, l1) in itertools.pairwise(rows):
            ok = (w1 - w0) < self.max_wait
            if ok and prev_ok:
                packets += p1 - p0
                late += l1 - l0
                quiet += 1
            prev_ok = ok
        return packets, late, quiet, max(len(rows) - 1, 0)


async def _loss(coordinator: Any, ids: list[str]) -> tuple[list[float], int, int]:
    """(loss % per call since its start, packets received, packets lost) over the calls."""
    loss: list[float] = []
    received = lost = 0
    for sid in ids:
        try:
            stats = await coordinator.get_media_statistics(sid)
        except Exception:  # ended meanwhile: not counted
            continue
        if stats is None:
            continue
        received += int(stats.packets_received)
        lost += int(stats.packets_lost)
        q = getattr(stats, "quality_metrics", None)
        if q is not None:
            loss.append(float(q.packet_loss_percent))
    return loss, received, lost


async def _hang_up(coordinator: Any, session_id: str) -> None:
    try:
        await coordinator.terminate_session(session_id)
    except Exception:  # the call already ended (e.g. the answerer gave up on it)
        return


async def caller(args: argparse.Namespace, server: Server, port: int) -> dict[str, Any]:
    """Place, hold and end the calls; the measured figures."""
    coordinator = await (
        SessionManagerBuilder()
        .with_local_address("sip:bench@127.0.0.1")
        .with_sip_port(0)
        .with_quality_interval(3600.0)
        .with_srtp(args.srtp)
        .with_codecs([args.codec])
        .build()
    )
    await coordinator.start()
    async with coordinator:
        rss0, srv_rss0 = proc_rss_kib(os.getpid()), proc_rss_kib(server.proc.pid)
        if args.tracemalloc:
            tracemalloc.start()
        heap0 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
        ids: list[str] = []
        failed = 0
        target = f"sip:bench@127.0.0.1:{port}"
        started = time.monotonic()

        async def place(i: int) -> None:
            nonlocal failed
            try:
                call = await coordinator.create_outgoing_call(coordinator.local_uri, target)
                await coordinator.wait_for_answer(call.id, 30.0)
                await coordinator.set_audio_source(call.id, tone_source(1000.0))
                ids.append(call.id)
            except Exception as exc:  # a failed set-up is counted, the rest go on
                failed += 1
                if failed <= 3:
                    print(f"call {i} failed: {exc!r}", flush=True)

        with anyio.move_on_after(args.calls / args.setup_rate + 40):
            async with anyio.create_task_group() as tg:
                for i in range(args.calls):
                    tg.start_soon(place, i)
                    await anyio.sleep(1.0 / args.setup_rate)
        setup = time.monotonic() - started
        await anyio.sleep(1.0)  # let jitter buffers fill and RTCP start
        full_start = time.perf_counter()
        gc.collect()  # what one full (generation 2) collection of this heap costs
        full_ms = (time.perf_counter() - full_start) * 1000
        if not args.no_gc_freeze:
            gc.freeze()  # the calls' long-lived objects leave the collector's generations
        pauses = GcPauses()
        gc.callbacks.append(pauses)
        sampler = QuietSampler(coordinator)
        heap1 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
        rss1, srv_rss1 = proc_rss_kib(os.getpid()), proc_rss_kib(server.proc.pid)
        _loss0, received0, lost0 = await _loss(coordinator, ids)
        # The collection and the statistics above hold the loop for a moment: let the
        # media clock catch up before the window opens, so that stall is not counted.
        await anyio.sleep(0.2)
        packets0, late0, late_ticks0 = _clock_counts(coordinator)
        wait0, srv_wait0 = run_queue_wait(os.getpid()), run_queue_wait(server.proc.pid)
        hist0 = _clock_histogram(coordinator)
        cpu0, srv_cpu0, t0 = time.process_time(), server.cpu, time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler.run)
            await anyio.sleep(args.seconds)
            tg.cancel_scope.cancel()
        sampler.sample()
        cpu1, srv_cpu1, t1 = time.process_time(), server.cpu, time.monotonic()
        gc.callbacks.remove(pauses)
        hist = [b - a for a, b in zip(hist0, _clock_histogram(coordinator), strict=False)]
        quiet_packets, quiet_late, quiet_n, intervals = sampler.quiet()
        wait1, srv_wait1 = run_queue_wait(os.getpid()), run_queue_wait(server.proc.pid)
        packets1, late1, late_ticks1 = _clock_counts(coordinator)
        loss, received1, lost1 = await _loss(coordinator, ids)
        with anyio.move_on_after(30):
            async with anyio.create_task_group() as tg:
                for sid in ids:
                    tg.start_soon(_hang_up, coordinator, sid)
        if args.tracemalloc:
            tracemalloc.stop()
        n = max(len(ids), 1)
        window = t1 - t0
        return {
            "held": len(ids),
            "failed": failed,
            "setup_s": setup,
            "window_s": window,
            "packets": packets1 - packets0,
            "late": late1 - late0,
            "late_ticks": late_ticks1 - late_ticks0,
            "ticks": window / 0.02,
            "loss_mean": sum(loss) / len(loss) if loss else float("nan"),
            "loss_max": max(loss) if loss else float("nan"),
            "window_received": received1 - received0,
            "window_lost": lost1 - lost0,
            "cpu_per_call_ms": (cpu1 - cpu0) / window / n * 1000,
            "srv_cpu_per_call_ms": (srv_cpu1 - srv_cpu0) / window / n * 1000,
            "cores": (cpu1 - cpu0) / window,
            "srv_cores": (srv_cpu1 - srv_cpu0) / window,
            "rss_per_call_kb": (rss1 - rss0) * 1.024 / n,
            "srv_rss_per_call_kb": (srv_rss1 - srv_rss0) * 1.024 / n,
            "heap_per_call_kb": (heap1 - heap0) / 1000 / n,
            "wait_pct": (wait1 - wait0) / window * 100,
            "srv_wait_pct": (srv_wait1 - srv_wait0) / window * 100,
            "p50_ms": _percentile(hist, 50) * 1000,
            "p99_ms": _percentile(hist, 99) * 1000,
            "p999_ms": _percentile(hist, 99.9) * 1000,
            "quiet_packets": quiet_packets,
            "quiet_late": quiet_late,
            "quiet_intervals": quiet_n,
            "intervals": intervals,
            "gc_count": pauses.count,  # type: ignore[dict-item]
            "gc_longest_ms": [x * 1000 for x in pauses.longest],  # type: ignore[dict-item]
            "gc_total_ms": pauses.total * 1000,
            "gc_full_ms": full_ms,
            "late_by_second": sampler.late_by_second(),  # type: ignore[dict-item]
        }


def main() -> int:
    """Run the answerer, hold the calls, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0, help="hold window measured")
    parser.add_argument("--setup-rate", type=float, default=100.0, help="calls placed per s")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop of both processes (asyncio: as rvoip answer ships)",
    )
    parser.add_argument(
        "--rt", action="store_true", help="run both processes SCHED_FIFO (Linux, root)"
    )
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="keep the caller's objects in the collector"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also Python heap per call")
    parser.add_argument("--quick", action="store_true", help="smoke test: 20 calls, 2 s")
    parser.add_argument(
        "--srtp",
        choices=("off", "optional", "required"),
        default="off",
        help="SRTP mode of both processes (required: every packet protected/unprotected)",
    )
    parser.add_argument(
        "--codec",
        choices=("pcmu", "pcma", "g722", "opus"),
        default="pcmu",
        help="the codec of every call (both sides offer only it)",
    )
    parser.add_argument(
        "--answer-cmd",
        default=None,
        help="run this answerer instead of rvoip answer ({port} is replaced; it must print "
        "'answering at' when ready)",
    )
    args = parser.parse_args()
    if args.quick:
        args.calls, args.seconds = min(args.calls, 20), min(args.seconds, 2.0)
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    server_cpu, caller_cpu = cpu_plan(not args.no_pin)
    if caller_cpu is not None:
        os.sched_setaffinity(0, {caller_cpu})
        print(f"(answerer on CPU {server_cpu}, caller on CPU {caller_cpu})", flush=True)
    if args.rt:
        if real_time():
            print(f"(both processes SCHED_FIFO priority {RT_PRIORITY})", flush=True)
        else:
            print("(--rt refused: SCHED_FIFO needs root on Linux; normal priority)", flush=True)
    with tempfile.TemporaryDirectory(prefix="rvoip-concurrent-") as tmp:
        port = free_udp_port()
        cmd = (
            shlex.split(args.answer_cmd.replace("{port}", str(port)))
            if args.answer_cmd
            else answer_command(port, args.loop, args.srtp, args.codec)
        )
        print("answerer:", shlex.join(cmd), flush=True)
        server = Server.start("answer", cmd, Path(tmp) / "answer.log", "answering at", server_cpu)
        try:
            f = anyio.run(
                caller, args, server, port, backend_options={"use_uvloop": args.loop == "uvloop"}
            )
        finally:
            server.stop()
    late_pct = f["late"] / f["packets"] * 100 if f["packets"] else float("nan")
    print(
        f"calls held: {f['held']:.0f} of {args.calls} ({f['failed']:.0f} failed), "
        f"set up in {f['setup_s']:.1f} s, measured over {f['window_s']:.1f} s"
    )
    print(
        f"late packets (caller media clock, > 10 ms after their slot): {f['late']:.0f} of "
        f"{f['packets']:.0f} = {late_pct:.3f} % (target < 0.5 %); "
        f"late ticks {f['late_ticks']:.0f} of {f['ticks']:.0f}"
    )
    quiet_pct = f["quiet_late"] / f["quiet_packets"] * 100 if f["quiet_packets"] else float("nan")
    print(
        f"  over quiet 100 ms intervals (caller waited < 2 ms for a CPU; "
        f"{f['quiet_intervals']} of {f['intervals']}): {f['quiet_late']:.0f} of "
        f"{f['quiet_packets']:.0f} = {quiet_pct:.3f} %"
    )
    print(f"  late packets in each second of the window: {f['late_by_second']}")
    print(
        f"  send lateness after the slot: p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, "
        f"p99.9 {f['p999_ms']:.1f} ms"
    )
    gc_mode = "default" if args.no_gc_freeze else "gc.freeze() after set-up"
    print(
        f"caller GC ({gc_mode}): collections by generation {f['gc_count']}, longest "
        + "/".join(f"{x:.1f}" for x in f["gc_longest_ms"])
        + f" ms, total {f['gc_total_ms']:.0f} ms in the window; one full collection of "
        f"the caller's heap after set-up took {f['gc_full_ms']:.0f} ms"
    )
    expected = f["window_received"] + f["window_lost"]
    window_loss = 100.0 * f["window_lost"] / expected if expected > 0 else float("nan")
    print(
        f"loss seen by the calls (since set-up): mean {f['loss_mean']:.2f} %, max "
        f"{f['loss_max']:.2f} %; in the window: {f['window_lost']:.0f} of {expected:.0f} "
        f"= {window_loss:.3f} %"
    )
    print(
        f"CPU per call: caller {f['cpu_per_call_ms']:.2f} ms/s ({f['cores']:.2f} cores for "
        f"{f['held']:.0f} calls), answerer {f['srv_cpu_per_call_ms']:.2f} ms/s "
        f"({f['srv_cores']:.2f} cores)"
    )
    print(
        f"run-queue wait (other load on the machine took the CPU): caller "
        f"{f['wait_pct']:.1f} %, answerer {f['srv_wait_pct']:.1f} % of the window"
    )
    heap = f" , Python heap {f['heap_per_call_kb']:.1f} KB/call" if args.tracemalloc else ""
    print(
        f"memory per call: caller RSS {f['rss_per_call_kb']:.1f} KB, answerer RSS "
        f"{f['srv_rss_per_call_kb']:.1f} KB (target <= 100 KB){heap}"
    )
    return 0 if f["held"] == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
