#!/usr/bin/env python3
"""Soak: calls with RTP at a steady rate against one ``rvoip answer`` for a long time.

    .venv/bin/python tools/bench/soak.py [--minutes 30] [--rate 100] [--hold-ms 2000]
        [--warmup-minutes 3] [--sample-seconds 5] [--loop uvloop|asyncio] [--pcap FILE]

SIPp (tools/bench/_uac_soak.xml) places ``--rate`` calls/s to ``rvoip answer --auto``
on 127.0.0.1 for ``--minutes``: INVITE with a G.711 A-law offer, 200, ACK, RTP from a
pcap (SIPp's play_pcap_audio, default /usr/share/sip-tester/g711a.pcap: 50 packets/s)
for ``--hold-ms``, BYE/200; the answerer sends its own RTP back. So about
``rate x hold`` calls are up at any time, each with audio both ways. Every
``--sample-seconds`` the server's RSS is read from /proc; printed: the RSS over time
(one line a minute), the RSS after warm-up and at the end, the growth after warm-up
(target < 5 MB) and its slope, and SIPp's successful and failed calls (target 0 failed),
with the load average (the machine is shared). Bounded: SIPp stops offering after
``rate x minutes x 60`` calls and is killed if it runs more than 2 minutes past that.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sipp_run import (
    HERE,
    HOST,
    Server,
    _int,
    _stats_row,
    free_udp_port,
    proc_rss_kib,
    sipp_exe,
)
from cps import rvoip_command

SCENARIO = HERE / "_uac_soak.xml"
DEFAULT_PCAP = Path("/usr/share/sip-tester/g711a.pcap")


def load_average() -> str:
    """The 1-minute load average."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "-"


def soak_command(exe: str, port: int, args: argparse.Namespace, calls: int) -> list[str]:
    """The SIPp command: ``calls`` calls at ``args.rate`` with pcap audio."""
    return [
        exe,
        "-sf",
        str(SCENARIO),
        "-key",
        "pcap",
        str(args.pcap),
        "-i",
        HOST,
        "-mi",
        HOST,
        "-p",
        str(free_udp_port()),
        "-mp",
        str(free_udp_port(4)),
        "-r",
        f"{args.rate:g}",
        "-m",
        str(calls),
        "-d",
        str(args.hold_ms),
        "-l",
        str(max(10, round(args.rate * (args.hold_ms / 1000 + 5)))),
        "-timeout",
        f"{round(args.minutes * 60 + 60)}s",
        "-timeout_error",
        "-recv_timeout",
        "32000",
        "-nostdin",
        "-trace_stat",
        "-stf",
        "stat.csv",
        "-fd",
        "5",
        f"{HOST}:{port}",
    ]


def main() -> int:
    """Run the soak and print memory growth and failed calls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--hold-ms", type=int, default=2000, help="RTP time per call")
    parser.add_argument("--warmup-minutes", type=float, default=None, help="(min(3, 1/5))")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--pcap", type=Path, default=DEFAULT_PCAP, help="RTP to play")
    parser.add_argument("--rvoip-cmd", default=None, help="server command ({port} replaced)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 20 s at 20 calls/s")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.rate, args.hold_ms = 20 / 60, 20.0, 500
        args.warmup_minutes, args.sample_seconds = 5 / 60, 1.0
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    exe = sipp_exe()
    if exe is None:
        print("sipp not found on PATH: nothing measured", flush=True)
        return 2
    if not args.pcap.exists():
        print(f"{args.pcap} not found (Debian sip-tester ships it): nothing measured")
        return 2
    warmup = args.warmup_minutes
    if warmup is None:
        warmup = min(3.0, args.minutes / 5)
    duration = args.minutes * 60
    calls = max(1, round(args.rate * duration))
    with tempfile.TemporaryDirectory(prefix="rvoip-soak-") as tmp:
        work = Path(tmp)
        port = free_udp_port()
        command = (
            shlex.split(args.rvoip_cmd.replace("{port}", str(port)))
            if args.rvoip_cmd
            else rvoip_command(port, args.loop)
        )
        print(f"server: {shlex.join(command)}", flush=True)
        server = Server.start("soak", command, work / "server.log", "answering at", None)
        samples: list[tuple[float, int]] = []
        try:
            cmd = soak_command(exe, port, args, calls)
            print(f"SIPp: {shlex.join(cmd)}", flush=True)
            print(f"{'minute':>6} {'RSS MB':>8} {'ok':>8} {'failed':>6} {'load':>5}", flush=True)
            began = time.monotonic()
            sipp = subprocess.Popen(
                cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            next_print = 0.0
            while sipp.poll() is None:
                now = time.monotonic() - began
                if now > duration + 120:
                    sipp.kill()
                    break
                rss = proc_rss_kib(server.proc.pid)
                if server.proc.poll() is not None:
                    print("the server exited", flush=True)
                    sipp.kill()
                    break
                samples.append((now, rss))
                if now >= next_print:
                    row = _stats_row(work / "stat.csv")
                    print(
                        f"{now / 60:>6.1f} {rss / 1024:>8.1f} "
                        f"{_int(row, 'SuccessfulCall(C)'):>8} {_int(row, 'FailedCall(C)'):>6} "
                        f"{load_average():>5}",
                        flush=True,
                    )
                    next_print += 60.0
                time.sleep(args.sample_seconds)
            sipp.wait()
        finally:
            server.stop()
        row = _stats_row(work / "stat.csv")
    ok, failed = _int(row, "SuccessfulCall(C)"), _int(row, "FailedCall(C)")
    after = [(t, rss) for t, rss in samples if warmup * 60 <= t <= duration]
    print()
    if len(after) >= 2:
        first = statistics.mean(rss for _, rss in after[:3]) / 1024
        last = statistics.mean(rss for _, rss in after[-3:]) / 1024
        span = (after[-1][0] - after[0][0]) / 60
        slope = (last - first) / span if span > 0 else float("nan")
        print(
            f"RSS after {warmup:g} min warm-up {first:.1f} MB, at the end {last:.1f} MB: "
            f"growth {last - first:+.1f} MB over {span:.1f} min ({slope:+.2f} MB/min) "
            f"(target < 5 MB)"
        )
    else:
        print("too few samples after the warm-up to measure growth")
    print(
        f"calls: {ok} successful, {failed} failed of {calls} (target 0 failed); "
        f"load {load_average()}"
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
