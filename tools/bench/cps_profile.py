#!/usr/bin/env python3
"""Where a call's CPU goes: ``rvoip answer --auto`` under py-spy while SIPp places calls.

    .venv/bin/python tools/bench/cps_profile.py [--rate 300] [--seconds 6] [--loop uvloop]
        [--top 40] [--raw out.txt]

Runs one SIPp ``uac`` step (tools/bench/_uac_cps.xml) at a rate the server sustains, samples
the server with py-spy (``--raw`` keeps the collapsed stacks), and prints: the server's CPU
per call (the figure to drive down), the share of samples by package (the deepest rvoip
frame of each stack), the functions with the most self time and the most inclusive time.
Proportions are steady on a shared machine; absolute CPU per call is within ~10 %.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sipp_run import Server, cpu_plan, free_udp_port, run_step, sipp_exe
from cps import rvoip_command

_LINE = re.compile(r":\d+\)")
_PACKAGE = re.compile(r"(rvoip_\w+|anyio|asyncio|uvloop|trio)")


def _py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarize(raw: Path, top: int) -> str:
    """The package, self-time and inclusive-time tables of a py-spy raw (collapsed) file."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        package = "other"
        for frame in reversed(frames):
            found = _PACKAGE.search(frame)
            if found:
                package = found.group(1)
                break
        packages[package] += n
    if total == 0:
        return "no samples"
    out = [f"samples: {total}", "", "by package (deepest known frame):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in packages.most_common()]
    out += ["", f"self time, top {top}:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    out += ["", f"inclusive time, top {top * 2}:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


def main() -> int:
    """Profile one SIPp step against rvoip answer and print where the time went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--raw", type=Path, default=None, help="keep py-spy's collapsed stacks")
    args = parser.parse_args()
    exe, spy = sipp_exe(), _py_spy()
    if exe is None or spy is None:
        print("sipp or py-spy not found: nothing measured")
        return 2
    server_cpu, sipp_cpu = cpu_plan(True)
    with tempfile.TemporaryDirectory(prefix="rvoip-prof-") as tmp:
        work = Path(tmp)
        port = free_udp_port()
        server = Server.start(
            "rvoip",
            rvoip_command(port, args.loop),
            work / "server.log",
            "answering at",
            server_cpu,
        )
        raw = args.raw or work / "profile.txt"
        try:
            record = ["record", "-p", str(server.proc.pid), "-f", "raw", "-r", "250"]
            record += ["-o", str(raw), "-d", str(int(args.seconds + 4)), "--nonblocking"]
            spy_proc = subprocess.Popen(
                [spy, *record],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            step, _ = run_step(
                exe, server, port, args.rate, args.seconds, 0, work / "step", sipp_cpu
            )
            spy_proc.wait(timeout=args.seconds + 30)
        finally:
            server.stop()
        print(f"command: {' '.join([sys.executable, *sys.argv])}")
        print(
            f"calls {step.calls}, ok {step.successful}, failed {step.failed}, "
            f"achieved {step.achieved:,.0f}/s, server CPU "
            f"{step.server_cpu / max(step.successful, 1) * 1e6:,.0f} us/call"
        )
        print(summarize(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
