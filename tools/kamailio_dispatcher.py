#!/usr/bin/env python3
"""Kamailio's dispatcher in front of N ``rvoip answer`` workers, all on 127.0.0.1.

    .venv/bin/python tools/kamailio_dispatcher.py [--workers 3] [--port 5060]
        [--ping-interval 1] [--fr-timer-ms 1000] [--drain-timeout 30] [--quiet]

Writes the dispatcher list file into a temporary directory, starts the workers
(``rvoip answer --drain-timeout S``, each printing its calls into its own log file
there) and Kamailio with ``deploy/kamailio/dispatcher.cfg``, prints where everything is
and a SIPp command line to try it, and waits for Ctrl-C; then stops them all (the
workers drain: SIGTERM, see docs/scale-out.md) and removes the directory.

The same pieces are a library for the dispatcher test and benchmark: `LocalCluster`
starts and stops the processes, reads the per-worker call counts from their logs and
the dispatcher's view of the workers from ``kamcmd dispatcher.list``. Everything here
talks to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "kamailio" / "dispatcher.cfg"
SCENARIO = ROOT / "deploy" / "kamailio" / "uac.xml"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
"""Seconds a worker or Kamailio may take to start listening."""


def find_kamailio() -> str | None:
    """The ``kamailio`` binary (Debian installs it in /usr/sbin), or None."""
    exe = shutil.which("kamailio")
    if exe is None and Path("/usr/sbin/kamailio").exists():
        exe = "/usr/sbin/kamailio"
    return exe


def find_kamcmd() -> str | None:
    """The ``kamcmd`` binary, or None."""
    exe = shutil.which("kamcmd")
    if exe is None and Path("/usr/sbin/kamcmd").exists():
        exe = "/usr/sbin/kamcmd"
    return exe


def dispatcher_module_present() -> bool:
    """Whether Debian's kamailio ships the dispatcher module the config loads."""
    return Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/dispatcher.so").exists()


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that is free now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def rvoip_command() -> list[str]:
    """``rvoip`` next to this interpreter (the venv's console script), or ``-m``."""
    script = Path(sys.executable).with_name("rvoip")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "rvoip_session_core"]


class Worker:
    """One ``rvoip answer`` process; its output goes to a log file (never a pipe)."""

    def __init__(self, index: int, port: int, log: Path, proc: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.port = port
        self.log = log
        self.proc = proc

    @property
    def uri(self) -> str:
        """The worker's SIP URI as the dispatcher list names it."""
        return f"sip:{HOST}:{self.port}"

    def output(self) -> str:
        """Everything the worker printed so far."""
        return self.log.read_text(errors="replace")

    def answered(self) -> int:
        """Calls the worker answered (its ``call ...: answered`` lines)."""
        return sum(1 for line in self.output().splitlines() if line.endswith(": answered"))

    def ended(self) -> list[str]:
        """The reasons of the calls that ended (its ``call ...: ended (reason)`` lines)."""
        found = re.findall(r"^call \S+: ended \((.*)\)$", self.output(), re.MULTILINE)
        return [str(reason) for reason in found]

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the worker and wait up to ``timeout`` s (then kill it); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


class LocalCluster:
    """Kamailio's dispatcher plus ``workers`` rvoip answer processes on 127.0.0.1.

    Use as a context manager: everything is started on entry and stopped on exit; the
    run directory (list file, logs, ctl socket) is a temporary directory unless
    ``workdir`` is given.

    Args:
        workers: how many ``rvoip answer`` workers.
        workdir: where the list file and logs go (None: a temporary directory, removed).
        port: Kamailio's UDP port (0: a free one).
        ping_interval: seconds between the dispatcher's OPTIONS probes of each worker.
        fr_timer_ms: ms without a final answer after which an INVITE fails over.
        drain_timeout: the workers' ``--drain-timeout`` (how long a SIGTERM'd worker lets
            its calls run).
        quiet: workers run with ``--quiet`` (no per-call lines: for load; then
            ``Worker.answered`` cannot count).
        children: Kamailio's UDP receiver processes.
        worker_args: extra ``rvoip answer`` arguments.
    """

    def __init__(
        self,
        workers: int = 3,
        *,
        workdir: Path | None = None,
        port: int = 0,
        ping_interval: int = 1,
        fr_timer_ms: int = 1000,
        drain_timeout: float = 30.0,
        quiet: bool = False,
        children: int = 2,
        worker_args: tuple[str, ...] = (),
    ) -> None:
        self.count = workers
        self.port = port
        self.ping_interval = ping_interval
        self.fr_timer_ms = fr_timer_ms
        self.drain_timeout = drain_timeout
        self.quiet = quiet
        self.children = children
        self.worker_args = worker_args
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = workdir
        self.workers: list[Worker] = []
        self.kamailio: subprocess.Popen[bytes] | None = None
        self.kamailio_log: Path | None = None

    @property
    def ctl(self) -> str:
        """The ctl module's socket, for ``kamcmd -s``."""
        assert self.workdir is not None
        return f"unix:{self.workdir}/kamailio_ctl"

    @property
    def uri(self) -> str:
        """Where callers send their INVITEs: the balancer."""
        return f"sip:{HOST}:{self.port}"

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the workers, then Kamailio; return once all listen (bounded)."""
        exe = find_kamailio()
        if exe is None:
            raise RuntimeError("kamailio not installed (Debian: apt-get install kamailio)")
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rvoip-dispatcher-")
            self.workdir = Path(self._tmp.name)
        # Started together, then awaited: each takes a second or two to import and bind.
        self.workers = [self._spawn_worker(index) for index in range(self.count)]
        for worker in self.workers:
            self._wait_worker(worker)
        listing = self.workdir / "dispatcher.list"
        listing.write_text("".join(f"1 {w.uri}\n" for w in self.workers))
        if not self.port:
            self.port = free_udp_port()
        self.kamailio_log = self.workdir / "kamailio.log"
        cmd = [
            exe,
            "-f",
            str(CONFIG),
            "-DD",  # foreground, no daemon
            "-E",  # log to stderr (our log file)
            "-n",
            str(self.children),
            "-l",
            f"udp:{HOST}:{self.port}",
            "-Y",
            str(self.workdir),
            "-w",
            str(self.workdir),
            "-A",
            f'DS_LIST="{listing}"',
            "-A",
            f"PING_INTERVAL={self.ping_interval}",
            "-A",
            f"FR_TIMER={self.fr_timer_ms}",
            "-A",
            f'CTL_SOCKET="{self.ctl}"',
        ]
        with self.kamailio_log.open("wb") as out:
            self.kamailio = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while _udp_port_free(self.port) or not (self.workdir / "kamailio_ctl").exists():
            if self.kamailio.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "kamailio did not start: "
                    + self.kamailio_log.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.05)

    def _spawn_worker(self, index: int) -> Worker:
        assert self.workdir is not None
        port = free_udp_port()
        log = self.workdir / f"worker-{index}.log"
        cmd = [
            *rvoip_command(),
            "answer",
            "--host",
            HOST,
            "--port",
            str(port),
            "--drain-timeout",
            f"{self.drain_timeout:g}",
            *(["--quiet"] if self.quiet else []),
            *self.worker_args,
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
        return Worker(index, port, log, proc)

    @staticmethod
    def _wait_worker(worker: Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while "answering at" not in worker.output():
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                worker.stop(signal.SIGKILL)
                raise RuntimeError(
                    f"worker {worker.index} did not start: {worker.output()[-2000:]}"
                )
            time.sleep(0.05)

    def dispatcher_states(self) -> dict[str, str]:
        """Destination URI -> dispatcher flags (``AP`` active, ``IP`` inactive and probing).

        Read with ``kamcmd dispatcher.list`` over the ctl socket in the run directory.
        """
        kamcmd = find_kamcmd()
        if kamcmd is None:
            raise RuntimeError("kamcmd not installed (Debian: kamailio package)")
        out = subprocess.run(
            [kamcmd, "-s", self.ctl, "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        states: dict[str, str] = {}
        uri: str | None = None
        for line in out.splitlines():
            key, _, value = line.strip().partition(": ")
            if key == "URI":
                uri = value
            elif key == "FLAGS" and uri is not None:
                states[uri] = value
                uri = None
        return states

    def wait_state(self, worker: Worker, active: bool, timeout: float = 10.0) -> float:
        """Wait until the dispatcher sees ``worker`` active (or not); seconds it took."""
        started = time.monotonic()
        while True:
            flags = self.dispatcher_states().get(worker.uri, "")
            if flags.startswith("A") == active:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{worker.uri} still {flags!r} after {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop Kamailio and the workers (bounded) and remove the temporary directory."""
        if self.kamailio is not None and self.kamailio.poll() is None:
            self.kamailio.terminate()
            try:
                self.kamailio.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kamailio.kill()
                self.kamailio.wait(timeout=5)
        for worker in self.workers:
            # A second signal stops a draining worker at once; no calls are left anyway.
            worker.stop(signal.SIGINT, timeout=5)
            worker.stop(signal.SIGINT, timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def sipp_command(
        self,
        sipp: str,
        *,
        rate: float,
        calls: int,
        hold_ms: int = 0,
        timeout: float = 30.0,
        extra: tuple[str, ...] = (),
    ) -> list[str]:
        """SIPp sending ``calls`` calls at ``rate``/s through the balancer (uac.xml)."""
        return [
            sipp,
            "-sf",
            str(SCENARIO),
            "-i",
            HOST,
            "-mi",
            HOST,
            "-p",
            str(free_udp_port()),
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
            *extra,
            f"{HOST}:{self.port}",
        ]


def main() -> int:
    """Start the layout, print it, wait for Ctrl-C, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3, help="rvoip answer workers (3)")
    parser.add_argument("--port", type=int, default=5060, help="Kamailio's UDP port (5060)")
    parser.add_argument("--ping-interval", type=int, default=1, help="OPTIONS probe period, s")
    parser.add_argument("--fr-timer-ms", type=int, default=1000, help="failover after ms")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="workers' drain, s")
    parser.add_argument("--quiet", action="store_true", help="workers print no call lines")
    args = parser.parse_args()
    cluster = LocalCluster(
        args.workers,
        port=args.port,
        ping_interval=args.ping_interval,
        fr_timer_ms=args.fr_timer_ms,
        drain_timeout=args.drain_timeout,
        quiet=args.quiet,
    )
    with cluster:
        print(f"kamailio dispatcher at {cluster.uri} (run directory {cluster.workdir})")
        for worker in cluster.workers:
            print(
                f"  worker {worker.index}: {worker.uri} (pid {worker.proc.pid}, log {worker.log})"
            )
        sipp = shutil.which("sipp") or "sipp"
        example = cluster.sipp_command(sipp, rate=10, calls=100, hold_ms=1000)
        print("try:", shlex.join(example))
        print(f"drain a worker: kill -TERM <pid>; states: kamcmd -s {cluster.ctl} dispatcher.list")
        print("Ctrl-C stops everything", flush=True)
        try:
            while all(w.alive() or w.proc.returncode is not None for w in cluster.workers):
                if cluster.kamailio is not None and cluster.kamailio.poll() is not None:
                    print("kamailio exited", file=sys.stderr)
                    return 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
