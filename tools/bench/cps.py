#!/usr/bin/env python3
"""Call rate: SIPp uac against ``rvoip answer --auto``, ramped until calls fail.

    .venv/bin/python tools/bench/cps.py [--rates 200,400,...] [--seconds 4] [--hold-ms 0]
        [--loop asyncio|uvloop] [--no-pin] [--retries 1] [--quick]

Each step sends ``rate x seconds`` calls of tools/bench/_uac_cps.xml (INVITE with an SDP
offer, 200 with the SDP answer, ACK, ``--hold-ms`` pause, BYE/200) at one target rate,
all on 127.0.0.1. A step passes when every call succeeded and SIPp sustained >= 90 % of
the target rate; the ramp stops at the first step that fails (after ``--retries``
re-runs, since the machine is shared) or at the last rate. The same ramp is then run
against tools/bench/_stateless.py (a stateless responder on uvloop: the ceiling of this
machine with SIPp beside it). Printed per step: achieved calls/s, failures, SIPp
retransmissions, INVITE->200 p50/p99 (SIPp -trace_rtt, ms resolution), CPU per call
of the server and of SIPp, and the server's run-queue wait (% of the step it was runnable
but other load had the CPU: a high figure marks a step disturbed by the shared machine);
then the headline figures and the ratio.

On a 2-core machine the server is pinned to CPU 0 and SIPp to CPU 1 (``--no-pin`` to
let the kernel choose), so the ramp measures what one core of server does.
``rvoip answer`` runs with the event loop named by ``--loop`` (``asyncio``: the stdlib
loop; ``uvloop``, which the CLI itself picks by default when uvloop is installed).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import tempfile
import time
from pathlib import Path

# tools/bench is on the path (this script's directory) for _sipp_run; note that
# tools/bench/concurrent.py shadows the stdlib ``concurrent``: nothing here imports asyncio.
from _sipp_run import (
    HERE,
    Server,
    Step,
    cpu_plan,
    free_udp_port,
    python_cmd,
    quiet_flag,
    run_step,
    sipp_exe,
)

DEFAULT_RATES = "200,400,600,800,1000,1200,1500,2000,2500,3000,4000,5000,6000,8000,10000"
QUICK_RATES = "50,100"


def rvoip_command(port: int, loop: str) -> list[str]:
    """``rvoip answer --auto`` on ``port`` (the console script next to the interpreter)."""
    args = ["answer", "--auto", "--port", str(port), "--host", "127.0.0.1"]
    args += quiet_flag()
    # The CLI picks uvloop when installed; name the loop so each step measures what it says.
    args += ["--loop", loop]
    script = Path(sys.executable).with_name("rvoip")
    if script.exists():
        return [str(script), *args]
    return [*python_cmd(), "-m", "rvoip_session_core", *args]


def stateless_command(port: int) -> list[str]:
    """The stateless responder on ``port`` (uvloop when installed)."""
    return [*python_cmd(), str(HERE / "_stateless.py"), "--port", str(port)]


def fmt(value: float, digits: int = 0) -> str:
    """A number for the table, '-' for nan."""
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def ramp(
    label: str,
    command: list[str],
    ready: str,
    port: int,
    args: argparse.Namespace,
    workdir: Path,
) -> tuple[Step | None, list[str]]:
    """Run the ramp against one server; the best passing step and the last SIPp command."""
    exe = sipp_exe()
    assert exe is not None
    server_cpu, sipp_cpu = cpu_plan(not args.no_pin)
    print(f"\n== {label}: {shlex.join(command)}", flush=True)
    if server_cpu is not None:
        print(f"   (server on CPU {server_cpu}, SIPp on CPU {sipp_cpu})", flush=True)
    print(
        f"{'target/s':>9} {'calls':>6} {'ok':>6} {'failed':>6} {'retrans':>7} "
        f"{'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'server us/call':>14} "
        f"{'SIPp us/call':>12} {'srv wait %':>10}",
        flush=True,
    )
    server = Server.start(label, command, workdir / f"{label}.log", ready, server_cpu)
    best: Step | None = None
    last_cmd: list[str] = []
    try:
        for index, rate in enumerate(args.rate_list):
            for attempt in range(args.retries + 1):
                step, last_cmd = run_step(
                    exe,
                    server,
                    port,
                    rate,
                    args.seconds,
                    args.hold_ms,
                    workdir / f"{label}-{index}-{attempt}",
                    sipp_cpu,
                )
                per_call = max(step.successful, 1)
                wait = step.server_wait / step.elapsed * 100 if step.elapsed > 0 else math.nan
                mark = (
                    "" if step.passed else "  FAIL" + (" (retry)" if attempt < args.retries else "")
                )
                print(
                    f"{rate:>9g} {step.calls:>6} {step.successful:>6} {step.failed:>6} "
                    f"{step.retransmissions:>7} {step.achieved:>10,.0f} "
                    f"{fmt(step.percentile(50))} {fmt(step.percentile(99)):>7} "
                    f"{step.server_cpu / per_call * 1e6:>14,.0f} "
                    f"{step.sipp_cpu / per_call * 1e6:>12,.0f} "
                    f"{fmt(wait, 1):>10}"
                    f"{mark}",
                    flush=True,
                )
                if step.passed:
                    break
                time.sleep(1.0)  # let the server drain before the retry
            if not step.passed:
                break
            best = step
    finally:
        server.stop()
    return best, last_cmd


def headline(label: str, best: Step | None, top: float) -> str:
    """The one-line summary of a ramp."""
    if best is None:
        return f"{label}: no step passed"
    capped = " (the top of the ramp: the ceiling is at least this)" if best.rate >= top else ""
    return (
        f"{label}: {best.rate:g} calls/s with 0 failures (achieved {best.achieved:,.0f}/s), "
        f"INVITE->200 p50 {fmt(best.percentile(50))} ms, p99 {fmt(best.percentile(99))} ms, "
        f"server CPU {best.server_cpu / max(best.successful, 1) * 1e6:,.0f} us/call{capped}"
    )


def main() -> int:
    """Run both ramps and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=None, help=f"comma list (default {DEFAULT_RATES})")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per step (4)")
    parser.add_argument("--hold-ms", type=int, default=0, help="pause between ACK and BYE")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/SIPp to CPUs")
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a failing step")
    parser.add_argument("--skip-stateless", action="store_true")
    parser.add_argument(
        "--rvoip-cmd",
        default=None,
        help="measure this command instead of rvoip answer ({port} is replaced; it must print "
        "'answering at' when ready)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 short steps each")
    args = parser.parse_args()
    if args.quick:
        args.rates = args.rates or QUICK_RATES
        args.seconds = args.seconds or 1.0
        args.retries = 0
    args.rate_list = [float(r) for r in (args.rates or DEFAULT_RATES).split(",") if r]
    args.seconds = args.seconds or 4.0
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    if sipp_exe() is None:
        print("sipp not found on PATH: nothing measured", flush=True)
        return 2
    top = max(args.rate_list)
    with tempfile.TemporaryDirectory(prefix="rvoip-cps-") as tmp:
        work = Path(tmp)
        port = free_udp_port()
        command = (
            shlex.split(args.rvoip_cmd.replace("{port}", str(port)))
            if args.rvoip_cmd
            else rvoip_command(port, args.loop)
        )
        best, cmd = ramp("rvoip", command, "answering at", port, args, work)
        ceiling: Step | None = None
        if not args.skip_stateless:
            port = free_udp_port()
            ceiling, _ = ramp("stateless", stateless_command(port), '"port"', port, args, work)
    print()
    print("SIPp step command (last):", shlex.join(cmd))
    label = args.rvoip_cmd or f"rvoip answer --auto ({args.loop})"
    print(headline(label, best, top))
    if not args.skip_stateless:
        print(headline("stateless ceiling", ceiling, top))
        if best is not None and ceiling is not None:
            ratio = best.rate / ceiling.rate
            print(
                f"ratio rvoip / stateless: {ratio:.2f} "
                f"(targets: >= 1,000 calls/s and >= 0.80 x the ceiling)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
