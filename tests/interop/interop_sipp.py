"""Running SIPp from the interop tests: free ports, bounded runs, statistics read back.

Every run is bounded by ``-m`` (calls), ``-timeout`` (SIPp's own global timeout, an
error with ``-timeout_error``) and an anyio deadline around the process; the result
carries SIPp's exit code and its final statistics row (``-trace_stat``), plus the error
and message logs for assertion messages.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
HOST = "127.0.0.1"
_LOST = re.compile(r"message (?:\(retrans\) )?(?:voluntary )?lost \((?:recv|while sending)\)")


def find_sipp() -> str | None:
    """The ``sipp`` executable on PATH, or None."""
    return shutil.which("sipp")


def sipp_version(exe: str) -> str:
    """SIPp's version line, e.g. ``SIPp v3.6.1-SCTP-PCAP-RTPSTREAM``."""
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp v" in line:
            return line.strip().rstrip(".")
    return "SIPp (unknown version)"


def _port_is_free(port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_udp_port(span: int = 1) -> int:
    """A UDP port on 127.0.0.1 that is free now, with the next ``span - 1`` ports free too.

    The kernel picks the port (bind to 0), so concurrent test runs rarely collide; a
    ``span`` > 1 is for SIPp's media ports (audio on the port, RTCP and video above it).
    """
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if (span > 1 and port % 2) or port + span > 65535:
            continue
        if all(_port_is_free(port + i) for i in range(1, span)):
            return port
    raise RuntimeError("no free UDP port range found on 127.0.0.1")


@attrs.frozen
class SippResult:
    """What one SIPp run left behind."""

    name: str
    returncode: int
    stats: dict[str, str]
    errors: str
    messages: str
    screen: str
    output: str

    def count(self, column: str) -> int:
        """An integer column of the final statistics row (e.g. ``FailedCall(C)``); -1 if absent."""
        value = self.stats.get(column, "")
        return int(value) if value.strip().lstrip("-").isdigit() else -1

    @property
    def successful(self) -> int:
        """Calls SIPp counted as successful."""
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        """Calls SIPp counted as failed."""
        return self.count("FailedCall(C)")

    @property
    def losses(self) -> int:
        """Messages SIPp dropped on purpose (``-lost``), counted in its message log.

        SIPp logs "message lost (recv)", "message (retrans) lost (recv)" and "message
        voluntary lost (while sending)"; a loss test checks this to know it lost something.
        """
        return len(_LOST.findall(self.messages))

    def report(self) -> str:
        """A text for assertion messages: exit code, counters and the tail of the logs."""
        keys = ("SuccessfulCall(C)", "FailedCall(C)", "FailedUnexpectedMessage(C)")
        counters = ", ".join(f"{k}={self.stats.get(k, '?')}" for k in keys)
        return (
            f"SIPp {self.name}: exit {self.returncode}, {counters}\n"
            f"--- errors ---\n{self.errors[-3000:]}\n"
            f"--- messages (tail) ---\n{self.messages[-4000:]}\n"
            f"--- screen (tail) ---\n{self.screen[-1500:]}\n"
            f"--- output (tail) ---\n{self.output[-1500:]}"
        )


def _last_stats_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.reader(io.StringIO(path.read_text(errors="replace")), delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@attrs.define(eq=False)
class Sipp:
    """Runs SIPp scenarios against 127.0.0.1 with files in ``workdir``."""

    exe: str
    workdir: Path
    version: str = ""
    runs: int = 0

    def command(
        self,
        scenario: str,
        *,
        name: str,
        local_port: int,
        remote: tuple[str, int] | None = None,
        calls: int = 1,
        rate: float = 10.0,
        timeout: float = 20.0,
        media_port: int | None = None,
        variables: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> list[str]:
        """The SIPp command line; ``scenario`` is a built-in name or an XML file name."""
        base = self.workdir / name
        xml = SCENARIOS / scenario
        chosen = ["-sf", str(xml)] if scenario.endswith(".xml") else ["-sn", scenario]
        cmd = [
            self.exe,
            *chosen,
            "-i",
            HOST,
            "-mi",
            HOST,
            "-p",
            str(local_port),
            "-mp",
            str(media_port if media_port is not None else free_udp_port(4)),
            "-m",
            str(calls),
            "-r",
            f"{rate:g}",
            "-timeout",
            f"{max(1, round(timeout))}s",
            "-timeout_error",
            "-nostdin",
            "-trace_stat",
            "-stf",
            f"{base}.stat.csv",
            "-fd",
            "1",
            "-trace_err",
            "-error_file",
            f"{base}.errors.log",
            "-trace_msg",
            "-message_file",
            f"{base}.messages.log",
            "-trace_screen",
            "-screen_file",
            f"{base}.screen.log",
        ]
        for key, value in (variables or {}).items():
            cmd += ["-key", key, value]
        cmd += list(extra)
        if remote is not None:
            cmd.append(f"{remote[0]}:{remote[1]}")
        return cmd

    def result(self, name: str, returncode: int) -> SippResult:
        """Collect the files a run named ``name`` wrote."""
        base = self.workdir / name
        return SippResult(
            f"{name} ({self.version})" if self.version else name,
            returncode,
            _last_stats_row(Path(f"{base}.stat.csv")),
            _read(Path(f"{base}.errors.log")),
            _read(Path(f"{base}.messages.log")),
            _read(Path(f"{base}.screen.log")),
            _read(Path(f"{base}.stdout")),
        )

    async def run(self, scenario: str, *, timeout: float = 20.0, **kw: Any) -> SippResult:
        """Run SIPp to completion (bounded by its ``-timeout`` plus a margin) and collect it."""
        process, name = await self.start(scenario, timeout=timeout, **kw)
        return await self.finish(process, name, timeout + 10)

    async def start(
        self, scenario: str, *, name: str | None = None, **kw: Any
    ) -> tuple[anyio.abc.Process, str]:
        """Start SIPp in the background; pair with ``finish``. Output goes to files."""
        self.runs += 1
        label = name or f"{Path(scenario).stem}-{self.runs}"
        cmd = self.command(scenario, name=label, **kw)
        (self.workdir / f"{label}.cmd").write_text(" ".join(cmd) + "\n")
        with open(self.workdir / f"{label}.stdout", "wb") as out:
            process = await anyio.open_process(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "TERM": "dumb"},
            )
        return process, label

    async def start_server(
        self, scenario: str, *, local_port: int, **kw: Any
    ) -> tuple[anyio.abc.Process, str]:
        """Start a SIPp UAS on ``local_port`` (UDP, or TCP with ``-t t1``/``tn`` in ``extra``)
        and wait until it listens there.

        Raises:
            AssertionError: SIPp exited or did not bind within 5 s (with its report).
        """
        process, name = await self.start(scenario, local_port=local_port, **kw)
        extra = list(kw.get("extra", ()))
        tcp = "-t" in extra and extra[extra.index("-t") + 1 :][:1] in (["t1"], ["tn"])
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        with anyio.move_on_after(5.0):
            while _port_is_free(local_port, kind) and process.returncode is None:
                await anyio.sleep(0.01)
        if _port_is_free(local_port, kind):
            result = await self.finish(process, name, 1.0)
            raise AssertionError(f"SIPp did not start listening:\n{result.report()}")
        return process, name

    @contextlib.asynccontextmanager
    async def serve(
        self, scenario: str, *, local_port: int, **kw: Any
    ) -> AsyncIterator[SippServer]:
        """A SIPp UAS listening on ``local_port`` for the block; killed if not finished."""
        process, name = await self.start_server(scenario, local_port=local_port, **kw)
        server = SippServer(self, process, name)
        try:
            yield server
        finally:
            if server.result is None:
                with anyio.CancelScope(shield=True):
                    await self.finish(process, name, 0.0)

    async def finish(
        self, process: anyio.abc.Process, name: str, deadline: float = 30.0
    ) -> SippResult:
        """Wait for SIPp to exit (killing it after ``deadline`` seconds) and collect it."""
        with anyio.move_on_after(deadline):
            await process.wait()
        if process.returncode is None:
            process.kill()
            with anyio.move_on_after(5), anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()
        code = process.returncode if process.returncode is not None else -9
        return self.result(name, code)


@attrs.define(eq=False)
class SippServer:
    """A SIPp UAS started by ``Sipp.serve``."""

    sipp: Sipp
    process: anyio.abc.Process
    name: str
    result: SippResult | None = None

    async def finish(self, deadline: float = 30.0) -> SippResult:
        """Wait for SIPp to complete its calls and exit (killed after ``deadline`` s)."""
        if self.result is None:
            self.result = await self.sipp.finish(self.process, self.name, deadline)
        return self.result
