"""Runs baresip (a real softphone) on 127.0.0.1 for the TLS/SIPS interop tests.

baresip gets a config folder of its own in the test's tmp dir (``baresip -f <dir>``): SIP
on ``sip_port`` (UDP and TCP) and TLS on ``sip_port + 1`` (its convention) with the test
certificate (``sip_certificate``, certificate and key in one PEM) and the test CA
(``sip_cafile``), a 440 Hz sine as microphone (``ausine``), no audio player, G.711 only,
and the ``ctrl_tcp`` module to drive it: JSON commands and events in netstrings
(``{"command": "dial", "params": "sip:..."}``). Only 127.0.0.1 is used. Newer baresips
also take ``sip_verify_server``; 1.0 (Debian 12) does not know it and is left without.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc

HOST = "127.0.0.1"


def find_baresip() -> str | None:
    """The ``baresip`` executable on PATH, or None."""
    return shutil.which("baresip")


def free_sip_port() -> int:
    """A port P free now for UDP and TCP on 127.0.0.1, with P + 1 free for TCP (TLS)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            if port >= 65535:
                continue
            try:
                with (
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls,
                ):
                    tcp.bind((HOST, port))
                    tls.bind((HOST, port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free SIP port pair on 127.0.0.1")


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Baresip:
    """One baresip process with its own config folder, driven over ``ctrl_tcp``.

    Use as ``async with Baresip(exe, folder, cert, key) as phone``; ``phone.uri(...)``
    gives its SIP URIs, ``command`` runs a menu command, ``event`` waits for an event.
    """

    def __init__(
        self,
        exe: str,
        folder: Path,
        cert: Path,
        key: Path,
        *,
        user: str = "bare",
        modules: tuple[str, ...] = (),
        account: str | None = None,
        contacts: tuple[str, ...] = (),
        mediaenc: str | None = None,
        codecs: tuple[str, ...] = ("g711",),
        record: bool = False,
    ) -> None:
        """``codecs``: baresip codec modules to load, in offer order (``opus``, ``g722``,
        ``g711``); ``record``: load ``sndfile``, which writes each call's decoded audio to
        ``folder/*-dec.wav`` (``recordings``)."""
        self.codecs = codecs
        self.exe = exe
        self.mediaenc = mediaenc  # "srtp" (best effort), "srtp-mand" (RTP/SAVP) ...
        self.record = record  # sndfile: received (decoded) audio to dump-*-dec.wav
        self.folder = folder
        self.user = user
        self.modules = modules
        """Extra application modules (``presence.so``, ``mwi.so`` ...)."""
        self.account = account
        """The accounts line (default: ``<sip:user@127.0.0.1>`` with no registration)."""
        self.contacts = contacts
        """Lines of the contacts file (``<sip:bob@...>;presence=p2p`` ...)."""
        self.sip_port = free_sip_port()
        self.tls_port = self.sip_port + 1
        self.ctrl_port = _free_tcp_port()
        self.log = folder / "baresip.log"
        self._cert = cert
        self._key = key
        self._proc: subprocess.Popen[bytes] | None = None
        self._stream: anyio.abc.SocketStream | None = None
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self.version_text = "0"

    def uri(self, form: str = "tls") -> str:
        """Its URI: ``udp``, ``tcp``, ``tls`` (sip:…;transport=tls) or ``sips``."""
        if form == "sips":
            return f"sips:{self.user}@{HOST}:{self.tls_port}"
        if form == "tls":
            return f"sip:{self.user}@{HOST}:{self.tls_port};transport=tls"
        param = "" if form == "udp" else f";transport={form}"
        return f"sip:{self.user}@{HOST}:{self.sip_port}{param}"

    def _write_config(self) -> Path:
        config = self.folder / "baresip"
        config.mkdir(parents=True, exist_ok=True)
        combined = config / "cert.pem"
        combined.write_bytes(self._cert.read_bytes() + self._key.read_bytes())
        rtp = _free_tcp_port() // 2 * 2
        lines = [
            "poll_method\tepoll",
            f"sip_listen\t{HOST}:{self.sip_port}",
            f"sip_certificate\t{combined}",
            f"sip_cafile\t{self._cert}",
            "audio_source\tausine,440",
            "ausrc_srate\t48000",
            "ausrc_channels\t2",  # ausine makes 48 kHz stereo only
            f"rtp_ports\t{rtp}-{min(rtp + 40, 65534)}",
            f"net_interface\t{HOST}",
            "module_path\t/usr/lib/baresip/modules",
            *(f"module\t{name}.so" for name in self.codecs),
            "module\tausine.so",
            *(("module\tsndfile.so", f"snd_path\t{self.folder}") if self.record else ()),
            "module_app\taccount.so",  # loads the accounts file (no account: no dial)
            "module_app\tmenu.so",
            "module_app\tctrl_tcp.so",
            f"ctrl_tcp_listen\t{HOST}:{self.ctrl_port}",
            *(f"module_app\t{module}" for module in self.modules),
        ]
        if self.mediaenc is not None:
            lines.append("module\tsrtp.so")  # SDES-SRTP (RFC 4568), per account mediaenc
        (config / "config").write_text("\n".join(lines) + "\n")
        params = "" if self.mediaenc is None else f";mediaenc={self.mediaenc}"
        account = self.account or f"<sip:{self.user}@{HOST}>;regint=0;answermode=auto{params}"
        (config / "accounts").write_text(account + "\n")
        (config / "contacts").write_text("".join(line + "\n" for line in self.contacts))
        return config

    @property
    def version(self) -> tuple[int, ...]:
        """baresip's version, e.g. ``(1, 0, 0)``, read from its banner."""
        return tuple(int(part) for part in self.version_text.split("."))

    async def __aenter__(self) -> Self:
        banner = subprocess.run(
            [self.exe, "-h"], capture_output=True, text=True, timeout=10, check=False
        )
        found = re.search(r"baresip v(\d+(?:\.\d+)+)", banner.stdout + banner.stderr)
        self.version_text = found.group(1) if found else "0"
        config = self._write_config()
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(
                [self.exe, "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            with anyio.fail_after(10):
                while self._stream is None:
                    if self._proc.poll() is not None:
                        raise RuntimeError(f"baresip exited: {self.log.read_text()}")
                    try:
                        self._stream = await anyio.connect_tcp(HOST, self.ctrl_port)
                    except OSError:
                        await anyio.sleep(0.1)
        except BaseException:
            self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()
        self._stop()

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)

    def recordings(self, kind: str = "dec") -> list[Path]:
        """The WAV files sndfile wrote (``dec``: audio received and decoded; ``enc``: sent),
        oldest first."""
        return sorted(self.folder.glob(f"*-{kind}.wav"), key=lambda p: p.stat().st_mtime)

    def output(self) -> str:
        """baresip's console output so far (for assertion messages)."""
        return self.log.read_text(errors="replace")

    async def _next(self) -> dict[str, Any]:
        assert self._stream is not None
        while True:
            head, sep, rest = self._buffer.partition(b":")
            if sep and head.isdigit() and len(rest) > int(head):
                size = int(head)
                body, self._buffer = rest[:size], rest[size + 1 :]
                decoded: dict[str, Any] = json.loads(body)
                return decoded
            self._buffer += await self._stream.receive()

    async def command(self, command: str, params: str = "", timeout: float = 5) -> str:
        """Run a menu command (``dial``, ``accept``, ``hangup``, ``hold`` ...); its text."""
        assert self._stream is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        await self._stream.send(b"%d:%s," % (len(body), body))
        with anyio.fail_after(timeout):
            while True:
                message = await self._next()
                if message.get("response"):
                    return str(message.get("data", ""))
                self._events.append(message)

    async def event(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """Wait for the next event of ``kind`` (``CALL_ESTABLISHED``, ``CALL_CLOSED`` ...)."""
        with anyio.fail_after(timeout):
            while True:
                for index, seen in enumerate(self._events):
                    if seen.get("type") == kind:
                        return self._events.pop(index)
                self._events.append(await self._next())

    def seen(self, kind: str) -> bool:
        """Whether an event of ``kind`` arrived and was not yet taken by `event`."""
        return any(seen.get("type") == kind for seen in self._events)
