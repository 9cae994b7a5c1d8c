#!/usr/bin/env python3
"""Overload: goodput of ``rvoip answer --auto`` at 1x, 2x, 3x its saturation call rate.

    .venv/bin/python tools/bench/overload.py [--saturation 1200] [--multipliers 1,2,3]
        [--seconds 10] [--loop uvloop|asyncio] [--no-pin] [--rvoip-cmd CMD]

The saturation rate is measured first (unless ``--saturation`` gives it): the cps.py ramp
(tools/bench/_uac_cps.xml, every call must succeed at >= 90 % of the target rate) up to
the first failing step, the best passing step's achieved rate (against ``--base`` when
given). Then, for each multiplier, a fresh server gets SIPp at
``multiplier x saturation`` calls/s for ``--seconds`` seconds (only 127.0.0.1; SIPp stops
offering after ``rate x seconds`` calls and waits for the calls in progress, bounded by
its -timeout). Printed per step: offered calls/s, goodput (successful calls per second of
the whole SIPp run, its tail included), failed calls, 503s (SIPp's
FailedUnexpectedMessage: a 503 is the only unexpected message of the scenario), the
server's CPU, and the recovery time: from the moment SIPp stops offering, a probe
call (INVITE with SDP, 200, ACK, BYE, 200 from a plain socket, 1 s per transaction) is
placed every 0.25 s until one completes; the time to the first complete probe call is
"answers normally after" (target <= 5 s; goodput at 3x >= 90 % of the saturation
goodput). The load average is printed with each step: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _sipp_run import (
    HOST,
    Server,
    _epoch,
    _int,
    _stats_row,
    cpu_plan,
    free_udp_port,
    pinned,
    run_step,
    sipp_command,
    sipp_exe,
)
from cps import rvoip_command

RAMP = "600,800,1000,1100,1200,1300,1400,1500,1600,1800,2000"
PROBE_EVERY = 0.25
PROBE_LIMIT = 30.0


def load_average() -> str:
    """The 1-minute load average (the machine is shared: each figure carries it)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "-"


def _probe_request(
    method: str,
    port: int,
    local: int,
    call_id: str,
    cseq: int,
    tag: str,
    to_tag: str,
    body: bytes = b"",
) -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [
        f"{method} sip:probe@{HOST}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{local};branch={branch}",
        f"From: <sip:probe@{HOST}:{local}>;tag={tag}",
        f"To: <sip:probe@{HOST}:{port}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:probe@{HOST}:{local}>",
        "Max-Forwards: 70",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _final(sock: socket.socket, call_id: str, method: str, deadline: float) -> bytes | None:
    """The first final response to ``method`` of ``call_id`` before ``deadline``, or None."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(65535)
        except (TimeoutError, OSError):
            return None
        if not data.startswith(b"SIP/2.0 ") or call_id.encode() not in data:
            continue
        if f" {method}\r\n".encode() not in data or data[8:9] == b"1":
            continue
        return data


def probe_call(port: int, timeout: float = 1.0) -> bool:
    """One call from a plain UDP socket; True when INVITE and BYE both got a 200."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as media,
    ):
        sock.bind((HOST, 0))
        media.bind((HOST, 0))
        local = sock.getsockname()[1]
        call_id = secrets.token_hex(10) + "@probe"
        tag = secrets.token_hex(4)
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {media.getsockname()[1]} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        ).encode()
        sock.sendto(_probe_request("INVITE", port, local, call_id, 1, tag, "", sdp), (HOST, port))
        answer = _final(sock, call_id, "INVITE", time.monotonic() + timeout)
        if answer is None or not answer.startswith(b"SIP/2.0 200"):
            return False
        to_tag = ""
        for line in answer.split(b"\r\n"):
            if line.lower().startswith((b"to:", b"t:")) and b";tag=" in line:
                to_tag = line.split(b";tag=", 1)[1].split(b";")[0].strip().decode()
        sock.sendto(_probe_request("ACK", port, local, call_id, 1, tag, to_tag), (HOST, port))
        sock.sendto(_probe_request("BYE", port, local, call_id, 2, tag, to_tag), (HOST, port))
        bye = _final(sock, call_id, "BYE", time.monotonic() + timeout)
        return bye is not None and bye.startswith(b"SIP/2.0 200")


def recovery_time(port: int, start: float) -> float:
    """Seconds from ``start`` until a probe call completes (nan if none within the limit)."""
    while time.monotonic() - start < PROBE_LIMIT:
        began = time.monotonic()
        if probe_call(port):
            return began - start
        time.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - began)))
    return float("nan")


def saturation(command_for: object, args: argparse.Namespace, work: Path) -> float:
    """The highest ramp rate at which every call succeeded (the cps.py criterion)."""
    exe = sipp_exe()
    assert exe is not None
    server_cpu, sipp_cpu = cpu_plan(not args.no_pin)
    port = free_udp_port()
    assert callable(command_for)
    server = Server.start("ramp", command_for(port), work / "ramp.log", "answering at", server_cpu)
    best = 0.0
    try:
        for index, rate in enumerate(float(r) for r in args.ramp.split(",")):
            step, _ = run_step(exe, server, port, rate, 4.0, 0, work / f"ramp-{index}", sipp_cpu)
            print(
                f"   ramp {rate:>6g}/s: {step.successful}/{step.calls} ok, "
                f"{step.achieved:,.0f}/s, load {load_average()}",
                flush=True,
            )
            if not step.passed:
                break
            best = step.achieved
            time.sleep(1.0)
    finally:
        server.stop()
    return best


def overload_step(
    command: list[str], port: int, rate: float, args: argparse.Namespace, work: Path
) -> dict[str, float]:
    """SIPp at ``rate`` for ``args.seconds`` against a fresh server; the figures of the step."""
    exe = sipp_exe()
    assert exe is not None
    server_cpu, sipp_cpu = cpu_plan(not args.no_pin)
    work.mkdir(parents=True, exist_ok=True)
    server = Server.start("server", command, work / "server.log", "answering at", server_cpu)
    try:
        calls = max(1, round(rate * args.seconds))
        timeout = args.seconds + 40
        cmd = sipp_command(exe, port, free_udp_port(), rate, calls, 0, timeout)
        cpu0 = server.cpu
        began = time.monotonic()
        sipp = subprocess.Popen(
            cmd,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **pinned(sipp_cpu),  # type: ignore[call-overload]
        )
        time.sleep(max(0.0, began + args.seconds - time.monotonic()))
        recovered = recovery_time(port, time.monotonic())
        try:
            sipp.wait(timeout=timeout + 30)
        except subprocess.TimeoutExpired:
            sipp.kill()
            sipp.wait()
        cpu = server.cpu - cpu0
    finally:
        server.stop()
    row = _stats_row(work / "stat.csv")
    elapsed = _epoch(row.get("CurrentTime", "")) - _epoch(row.get("StartTime", ""))
    successful = _int(row, "SuccessfulCall(C)")
    return {
        "offered": rate,
        "calls": calls,
        "successful": successful,
        "failed": _int(row, "FailedCall(C)"),
        "retrans": _int(row, "Retransmissions(C)"),
        "goodput": successful / elapsed if elapsed > 0 else 0.0,
        "elapsed": elapsed,
        "shed": _int(row, "FailedUnexpectedMessage(C)"),
        "recovery": recovered,
        "cpu": cpu,
    }


def main() -> int:
    """Measure the saturation rate, then the 1x/2x/3x steps; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saturation", type=float, default=None, help="skip the ramp")
    parser.add_argument("--ramp", default=RAMP, help=f"ramp rates (default {RAMP})")
    parser.add_argument("--multipliers", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=10.0, help="offering time per step")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/SIPp to CPUs")
    parser.add_argument("--rvoip-cmd", default=None, help="server command ({port} replaced)")
    parser.add_argument("--label", default="rvoip answer --auto")
    parser.add_argument("--quick", action="store_true", help="smoke test: 50/s, 1x and 3x, 2 s")
    parser.add_argument(
        "--base",
        default=None,
        help="also run every step against the transaction-core source tree in this "
        "directory (put first on PYTHONPATH: e.g. a `git archive` of the base commit's "
        "packages/transaction-core/src), interleaved, so both see the same machine load",
    )
    args = parser.parse_args()
    if args.quick:
        args.saturation = args.saturation or 50.0
        args.multipliers = "1,3"
        args.seconds = 2.0
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    if sipp_exe() is None:
        print("sipp not found on PATH: nothing measured", flush=True)
        return 2

    def command_for(port: int) -> list[str]:
        if args.rvoip_cmd:
            return shlex.split(args.rvoip_cmd.replace("{port}", str(port)))
        return rvoip_command(port, args.loop)

    def base_command_for(port: int) -> list[str]:
        return ["env", f"PYTHONPATH={args.base}", *command_for(port)]

    variants = [(args.label, command_for)]
    if args.base:
        variants.insert(0, ("base", base_command_for))

    with tempfile.TemporaryDirectory(prefix="rvoip-overload-") as tmp:
        work = Path(tmp)
        sat = args.saturation
        if sat is None:
            print(f"== saturation ramp (load {load_average()})", flush=True)
            # the base's ramp when comparing: the same criterion (0 failures) for both
            sat = saturation(base_command_for if args.base else command_for, args, work)
        print(
            f"== {args.label}: saturation {sat:,.0f} calls/s; {args.seconds:g} s per step",
            flush=True,
        )
        header = (
            f"{'server':>8} {'x':>4} {'offered/s':>9} {'calls':>6} {'ok':>6} {'failed':>6} "
            f"{'503s':>6} "
            f"{'retrans':>7} {'goodput/s':>9} {'% of sat':>8} {'normal after s':>14} "
            f"{'srv us/ok call':>14} {'load':>5}"
        )
        print(header, flush=True)
        rows = []
        steps = [
            (mult, label, make)
            for mult in (float(m) for m in args.multipliers.split(","))
            for label, make in variants
        ]
        for index, (mult, label, make) in enumerate(steps):
            port = free_udp_port()
            r = overload_step(make(port), port, mult * sat, args, work / f"step-{index}")
            if make is command_for:
                rows.append(r)
            print(
                f"{label[:8]:>8} {mult:>4g} {r['offered']:>9,.0f} {r['calls']:>6,.0f} "
                f"{r['successful']:>6,.0f} "
                f"{r['failed']:>6,.0f} {r['shed']:>6,.0f} {r['retrans']:>7,.0f} "
                f"{r['goodput']:>9,.0f} {r['goodput'] / sat * 100:>7.0f}% "
                f"{r['recovery']:>14.2f} {r['cpu'] / max(r['successful'], 1) * 1e6:>14,.0f} "
                f"{load_average():>5}",
                flush=True,
            )
            time.sleep(2.0)
    worst = min((r["goodput"] for r in rows), default=0.0)
    slowest = max((r["recovery"] for r in rows), default=0.0)
    print(
        f"\nworst goodput {worst:,.0f}/s = {worst / sat * 100:.0f} % of saturation "
        f"(target >= 90 %); slowest return to normal {slowest:.2f} s (target <= 5 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
