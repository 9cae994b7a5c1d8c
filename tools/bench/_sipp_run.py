"""Shared pieces of the SIPp benchmarks: server processes, CPU accounting, SIPp steps."""

from __future__ import annotations

import csv
import io
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "_uac_cps.xml"
HOST = "127.0.0.1"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_udp_port(span: int = 1) -> int:
    """An even UDP port on 127.0.0.1 with ``span - 1`` free ports above it."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port % 2 or port + span > 65535:
            continue
        ok = True
        for i in range(1, span):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind((HOST, port + i))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no free UDP port range on 127.0.0.1")


def pinned(cpu: int | None) -> dict[str, object]:
    """Popen keyword arguments that pin the child to ``cpu`` (Linux), or nothing."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, {cpu})}


def cpu_plan(pin: bool) -> tuple[int | None, int | None]:
    """(server CPU, SIPp CPU): two different cores when pinning and there are two."""
    if not pin or (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return None, None
    return 0, 1


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


def run_queue_wait(pid: int) -> float:
    """Seconds ``pid`` has spent runnable but waiting for a CPU (Linux schedstat), or nan.

    On a shared machine this says how much of a window other load took from the process.
    """
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return float("nan")


def proc_rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux /proc), 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@attrs.define(eq=False)
class Server:
    """A server subprocess whose stdout goes to a file (never a pipe that could fill)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, cmd: Sequence[str], log: Path, ready: str, cpu: int | None) -> Server:
        """Start ``cmd`` and wait (<= 20 s) until ``ready`` appears in its output."""
        out = log.open("wb")
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            **pinned(cpu),  # type: ignore[call-overload]
        )
        out.close()
        server = cls(name, proc, log)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if ready in log.read_text(errors="replace"):
                return server
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        server.stop()
        raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')[-800:]}")

    @property
    def cpu(self) -> float:
        """CPU seconds used so far."""
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        """SIGINT, then close stdin, then kill; bounded to a few seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()


@attrs.frozen
class Step:
    """One SIPp step at a fixed target rate."""

    rate: float
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed: float
    rtts_ms: tuple[float, ...]
    server_cpu: float
    sipp_cpu: float
    returncode: int
    server_wait: float = float("nan")

    @property
    def achieved(self) -> float:
        """Successful calls per second of SIPp's run time."""
        return self.successful / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def passed(self) -> bool:
        """Every call succeeded and the rate was sustained (>= 90 % of the target)."""
        return (
            self.failed == 0 and self.successful == self.calls and self.achieved >= 0.9 * self.rate
        )

    def percentile(self, p: float) -> float:
        """INVITE->200 response time percentile in ms (nan without samples)."""
        if not self.rtts_ms:
            return float("nan")
        if len(self.rtts_ms) == 1:
            return self.rtts_ms[0]
        return statistics.quantiles(self.rtts_ms, n=100, method="inclusive")[round(p) - 1]


def _stats_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.reader(io.StringIO(path.read_text(errors="replace")), delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


def _epoch(value: str) -> float:
    try:
        return float(value.split("\t")[-1])
    except (ValueError, IndexError):
        return 0.0


def _int(row: dict[str, str], key: str) -> int:
    value = row.get(key, "").strip()
    return int(value) if value.lstrip("-").isdigit() else -1


def sipp_exe() -> str | None:
    """The ``sipp`` executable on PATH, or None."""
    return shutil.which("sipp")


def sipp_command(
    exe: str, target: int, local_port: int, rate: float, calls: int, hold_ms: int, timeout: float
) -> list[str]:
    """The SIPp command line of one step (files are written to the working directory)."""
    return [
        exe,
        "-sf",
        str(SCENARIO),
        "-i",
        HOST,
        "-mi",
        HOST,
        "-p",
        str(local_port),
        "-mp",
        str(free_udp_port(4)),
        "-r",
        f"{rate:g}",
        "-m",
        str(calls),
        "-d",
        str(hold_ms),
        "-timeout",
        f"{max(1, round(timeout))}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        "stat.csv",
        "-fd",
        "1",
        "-trace_rtt",
        "-rtt_freq",
        "1",
        f"{HOST}:{target}",
    ]


def run_step(
    exe: str,
    server: Server,
    target: int,
    rate: float,
    seconds: float,
    hold_ms: int,
    workdir: Path,
    cpu: int | None,
) -> tuple[Step, list[str]]:
    """Run SIPp for ``rate * seconds`` calls against ``target``; the step and its command."""
    calls = max(1, round(rate * seconds))
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = sipp_command(exe, target, free_udp_port(), rate, calls, hold_ms, seconds * 3 + 15)
    before_server = server.cpu
    before_wait = run_queue_wait(server.proc.pid)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds * 3 + 30,
        check=False,
        **pinned(cpu),  # type: ignore[call-overload]
    )
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = server.cpu - before_server
    server_wait = run_queue_wait(server.proc.pid) - before_wait
    sipp_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    row = _stats_row(workdir / "stat.csv")
    rtts: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text(errors="replace").splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    rtts.append(float(parts[1]))
                except ValueError:
                    continue
    step = Step(
        rate=rate,
        calls=calls,
        successful=_int(row, "SuccessfulCall(C)"),
        failed=_int(row, "FailedCall(C)"),
        retransmissions=_int(row, "Retransmissions(C)"),
        elapsed=_epoch(row.get("CurrentTime", "")) - _epoch(row.get("StartTime", "")),
        rtts_ms=tuple(sorted(rtts)),
        server_cpu=server_cpu,
        sipp_cpu=sipp_cpu,
        returncode=proc.returncode,
        server_wait=server_wait,
    )
    return step, cmd


def quiet_flag() -> list[str]:
    """``["--quiet"]`` when this ``rvoip answer`` has it (no per-call output lines)."""
    script = Path(sys.executable).with_name("rvoip")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "rvoip_session_core"]
    try:
        out = subprocess.run(
            [*cmd, "answer", "--help"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["--quiet"] if "--quiet" in out else []


def python_cmd() -> list[str]:
    """The interpreter running this script (the project's .venv in normal use)."""
    return [sys.executable]
