#!/usr/bin/env python3
"""tools/bench/concurrent.py: N calls held with G.711 audio both ways between two rvoip processes.

    .venv/bin/python tools/bench/concurrent.py [--calls 500] [--seconds 10] [--setup-rate 100]
        [--loop asyncio|uvloop] [--no-pin] [--tracemalloc] [--quick]

One process is ``rvoip answer --auto --tone 440`` (pinned to CPU 0); this process is the
caller (pinned to CPU 1): a SessionCoordinator places ``--calls`` calls to it at
``--setup-rate`` calls/s, plays a 1 kHz tone on each, holds them all for ``--seconds``
and hangs up. Every call then carries 50 PCMU packets/s each way, through each
process's media engine (jitter buffer, decode, PLC, encode, RTCP).

Printed for the hold window: the caller's late packets (the media clock's counter:
packets sent more than 10 ms after their tick) and late ticks, loss seen by the calls,
CPU per call (ms of CPU per second of call, and % of a core per 100 calls) for both
processes, and memory per call (RSS after set-up minus RSS before, / N; with
``--tracemalloc`` also Python-heap bytes per call in the caller).
The caller's late-packet counter is read from the coordinator's media clock
(``coordinator._clock.stats``, a private attribute: this is a benchmark).
"""

from __future__ import annotations

import argparse
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


def answer_command(port: int, loop: str = "asyncio") -> list[str]:
    """``rvoip answer --auto`` sending a tone (the console script next to the interpreter)."""
    args = ["answer", "--auto", "--port", str(port), "--host", "127.0.0.1", "--tone", "440"]
    args += quiet_flag()
    # The CLI picks uvloop when installed; name the loop so the run measures what it says.
    args += ["--loop", loop]
    script = Path(sys.executable).with_name("rvoip")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "rvoip_session_core", *args]


def _clock_counts(coordinator: Any) -> tuple[int, int, int]:
    clock = getattr(coordinator, "_clock", None)
    stats = getattr(clock, "stats", None)
    if stats is None:
        return 0, 0, 0
    return int(stats.packets), int(stats.late_packets), int(stats.late_ticks)


async def _hang_up(coordinator: Any, session_id: str) -> None:
    try:
        await coordinator.terminate_session(session_id)
    except Exception:  # the call already ended (e.g. the answerer gave up on it)
        return


async def caller(args: argparse.Namespace, server: Server, port: int) -> dict[str, float]:
    """Place, hold and end the calls; the measured figures."""
    coordinator = await (
        SessionManagerBuilder()
        .with_local_address("sip:bench@127.0.0.1")
        .with_sip_port(0)
        .with_quality_interval(3600.0)
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
        heap1 = tracemalloc.get_traced_memory()[0] if args.tracemalloc else 0
        rss1, srv_rss1 = proc_rss_kib(os.getpid()), proc_rss_kib(server.proc.pid)
        packets0, late0, late_ticks0 = _clock_counts(coordinator)
        wait0, srv_wait0 = run_queue_wait(os.getpid()), run_queue_wait(server.proc.pid)
        cpu0, srv_cpu0, t0 = time.process_time(), server.cpu, time.monotonic()
        await anyio.sleep(args.seconds)
        cpu1, srv_cpu1, t1 = time.process_time(), server.cpu, time.monotonic()
        wait1, srv_wait1 = run_queue_wait(os.getpid()), run_queue_wait(server.proc.pid)
        packets1, late1, late_ticks1 = _clock_counts(coordinator)
        loss: list[float] = []
        for sid in ids:
            try:
                stats = await coordinator.get_media_statistics(sid)
            except Exception:  # ended meanwhile: not counted
                continue
            q = getattr(stats, "quality_metrics", None)
            if q is not None:
                loss.append(float(q.packet_loss_percent))
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
            "cpu_per_call_ms": (cpu1 - cpu0) / window / n * 1000,
            "srv_cpu_per_call_ms": (srv_cpu1 - srv_cpu0) / window / n * 1000,
            "cores": (cpu1 - cpu0) / window,
            "srv_cores": (srv_cpu1 - srv_cpu0) / window,
            "rss_per_call_kb": (rss1 - rss0) * 1.024 / n,
            "srv_rss_per_call_kb": (srv_rss1 - srv_rss0) * 1.024 / n,
            "heap_per_call_kb": (heap1 - heap0) / 1000 / n,
            "wait_pct": (wait1 - wait0) / window * 100,
            "srv_wait_pct": (srv_wait1 - srv_wait0) / window * 100,
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
    parser.add_argument("--tracemalloc", action="store_true", help="also Python heap per call")
    parser.add_argument("--quick", action="store_true", help="smoke test: 20 calls, 2 s")
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
    with tempfile.TemporaryDirectory(prefix="rvoip-concurrent-") as tmp:
        port = free_udp_port()
        cmd = (
            shlex.split(args.answer_cmd.replace("{port}", str(port)))
            if args.answer_cmd
            else answer_command(port, args.loop)
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
        f"late packets (caller media clock, > 10 ms after the tick): {f['late']:.0f} of "
        f"{f['packets']:.0f} = {late_pct:.3f} % (target < 0.5 %); "
        f"late ticks {f['late_ticks']:.0f} of {f['ticks']:.0f}"
    )
    print(f"loss seen by the calls: mean {f['loss_mean']:.2f} %, max {f['loss_max']:.2f} %")
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
