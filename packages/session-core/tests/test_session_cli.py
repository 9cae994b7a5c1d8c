"""Tests of the ``rvoip`` command line."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import signal
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np
import pytest
import sniffio
import soundfile  # type: ignore[import-untyped]

from rvoip_session_core import CallEnded, _cli_commands
from rvoip_session_core._cli_commands import resolve_loop
from rvoip_session_core.cli import main
from rvoip_session_core.testing import loopback_builder, next_event


def test_demo_verifies_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert "steps passed: all verified" in out
    for needle in ("REFER", "NOTIFY", "INVITE (SDP sendonly)", "BYE", "carol, call with alice"):
        assert needle in out


def test_demo_runs_on_trio_without_ladder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "trio", "--no-ladder"]) == 0
    out = capsys.readouterr().out
    assert "SIP ladder" not in out
    assert "all verified" in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rvoip_session_core", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "demo" in result.stdout


@pytest.fixture
def answering_peer() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0", "--tone", "440"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("answering at sip:")
        yield line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_options_and_call_against_an_answering_peer(
    answering_peer: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["options", answering_peer]) == 0
    assert "200 OK" in capsys.readouterr().out
    record = tmp_path / "heard.wav"
    args = ["call", answering_peer, "--duration", "0.6", "--dtmf", "12", "--record", str(record)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "connected to" in out
    assert "sent DTMF 12" in out
    assert "MOS" in out
    assert record.stat().st_size > 44


def test_call_plays_a_flac_and_records_both_sides_stereo(
    answering_peer: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--play`` takes a 32 kHz FLAC; ``--record-mode stereo`` writes ours left (700 Hz,
    the file) and theirs right (440 Hz, the peer's --tone)."""
    rate = 32000
    t = np.arange(rate * 2) / rate
    played = tmp_path / "prompt.flac"
    soundfile.write(str(played), 0.4 * np.sin(2 * np.pi * 700 * t), rate)
    record = tmp_path / "both.wav"
    args = ["call", answering_peer, "--duration", "1.2", "--play", str(played)]
    assert main([*args, "--record", str(record), "--record-mode", "stereo"]) == 0
    assert "connected to" in capsys.readouterr().out
    with wave.open(str(record)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    for channel, frequency in ((data[0::2], 700), (data[1::2], 440)):
        tail = channel[len(channel) // 3 :].astype(float)
        spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
        assert abs(np.argmax(spectrum) * 8000 / len(tail) - frequency) < 10


def test_answer_records_the_call_as_a_mix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``rvoip answer --record FILE --record-mode mix``: the file, complete once the caller
    hangs up, holds both tones (the answerer's 440 Hz and the caller's 1000 Hz)."""
    record = tmp_path / "mix.wav"
    answer = ["answer", "--port", "0", "--tone", "440", "--record", str(record)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvoip_session_core", *answer, "--record-mode", "mix"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("answering at sip:")
        assert main(["call", line.split()[-1], "--duration", "1.2", "--tone", "1000"]) == 0
        assert "hung up" in capsys.readouterr().out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the answerer completes the file at the BYE
            try:
                with wave.open(str(record)) as wav:
                    if wav.getnframes() > 0:
                        break
            except (EOFError, wave.Error):
                pass  # not written yet
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    with wave.open(str(record)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (1, 8000)
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)
    tail = data[len(data) // 3 :]
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail)))) ** 2
    freqs = np.fft.rfftfreq(len(tail), 1 / 8000)
    for frequency in (440, 1000):
        share = spectrum[np.abs(freqs - frequency) < 20].sum() / spectrum.sum()
        assert share > 0.2, f"{frequency} Hz holds {share:.2f} of the mix"


def test_errors_have_one_line_and_script_friendly_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["call", "not a uri"]) == 2
    assert capsys.readouterr().err.startswith("rvoip: bad URI")
    assert main(["options", "sip:nobody@127.0.0.1:9", "--timeout", "0.3"]) == 4
    assert "no answer" in capsys.readouterr().err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert main(["answer", "--port", str(port)]) == 3
    err = capsys.readouterr().err
    assert "Address already in use" in err
    assert err.count("\n") == 1


def test_call_and_answer_over_tls(session_tls_files: tuple[Path, Path]) -> None:
    cert, key = (str(f) for f in session_tls_files)
    tls = ["--transport", "tls", "--cert", cert, "--key", key]
    answer = [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0", "--tone", "440"]
    proc = subprocess.Popen(
        [*answer, *tls],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # RFC 5630 §3.1.2: a sip: URI naming TLS (sips: only for sips: requests).
        assert line.startswith("answering at sip:"), line
        target = line.split()[-1]
        assert target.endswith(";transport=tls"), target
        call = [sys.executable, "-m", "rvoip_session_core", "call", target, "--duration", "0.6"]
        # Issue 16: a TLS client needs no certificate of its own (``--ca`` verifies bob).
        client = ["--transport", "tls", "--port", "0", "--ca", cert]
        verified = subprocess.run(
            [*call, *client], capture_output=True, text=True, timeout=60, check=False
        )
        assert verified.returncode == 0, verified.stderr
        assert f"connected to {target}" in verified.stdout
        assert "hung up" in verified.stdout
        insecure = subprocess.run(
            [*call, *tls, "--insecure"], capture_output=True, text=True, timeout=60, check=False
        )
        assert insecure.returncode == 0, insecure.stderr
        assert "connected to" in insecure.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_tls_without_a_certificate_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["answer", "--port", "0", "--transport", "tls"]) == 2  # a usage error
    err = capsys.readouterr().err
    assert err.startswith("rvoip: answer --transport tls needs --cert")
    assert err.count("\n") == 1


def _start_answer(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(("answering at sip:", "answering at sips:")), line
    return proc, line.split()[-1]


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    try:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


@pytest.mark.anyio
async def test_answer_stops_on_sigint_and_hangs_up_the_active_call() -> None:
    proc, uri = _start_answer("--tone", "440")
    try:
        async with await loopback_builder("alice").build() as alice:
            events = alice.events()
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(call.id, 5)
            code, err = await anyio.to_thread.run_sync(_stop, proc, signal.SIGINT)
            ended = await next_event(events, CallEnded)
            assert isinstance(ended, CallEnded)
            assert ended.reason == "remote hangup"  # the CLI sent BYE before exiting
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130
    assert "stopped by SIGINT" in err


def test_answer_without_calls_stops_on_sigint_and_sigterm() -> None:
    for signum, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc, _ = _start_answer()
        code, err = _stop(proc, signum)
        assert code == expected
        assert err.count("\n") == 1  # one line, no traceback


def test_loop_choice_prefers_uvloop_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_loop("trio") == ("trio", {})
    assert resolve_loop("asyncio") == ("asyncio", {})
    assert resolve_loop(None) == ("asyncio", {"use_uvloop": True})  # installed in the venv
    assert resolve_loop("uvloop") == ("asyncio", {"use_uvloop": True})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert resolve_loop(None) == ("asyncio", {})  # not importable: silently stdlib asyncio
    assert resolve_loop("uvloop") == ("asyncio", {})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], "uvloop"), (["--loop", "asyncio"], "asyncio"), (["--loop", "trio"], "trio")],
)
def test_commands_run_on_the_chosen_loop(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: str
) -> None:
    seen: list[str] = []

    async def fake_options(args: object, wire: object) -> int:
        seen.append(sniffio.current_async_library())
        if seen[-1] == "asyncio":
            seen[-1] = type(asyncio.get_running_loop()).__module__.split(".")[0]
        return 0

    monkeypatch.setattr(_cli_commands, "_options_tapped", fake_options)
    assert main(["options", "sip:127.0.0.1:9", *argv]) == 0
    assert seen == [expected]


@pytest.mark.anyio
async def test_call_stops_on_sigint_and_hangs_up() -> None:
    async with await loopback_builder("bob").build() as bob:
        events = bob.events()
        host, port = bob.local_sip_address
        command = [sys.executable, "-m", "rvoip_session_core", "call", f"sip:bob@{host}:{port}"]
        command += ["--duration", "60"]
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line.startswith("connected to"), line
            code, err = await anyio.to_thread.run_sync(_stop, proc, signal.SIGINT)
            ended = await next_event(events, CallEnded)
            assert isinstance(ended, CallEnded)
            assert ended.reason == "remote hangup"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 130
    assert "stopped by SIGINT" in err


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_options_over_tcp_and_tls(transport: str, session_tls_files: tuple[Path, Path]) -> None:
    cert, key = (str(f) for f in session_tls_files)
    flags = ["--transport", transport]
    if transport == "tls":
        flags += ["--cert", cert, "--key", key]
    proc, target = _start_answer(*flags)
    try:
        assert (";transport=tcp" in target) == (transport == "tcp")
        ping = [sys.executable, "-m", "rvoip_session_core", "options", target, *flags]
        if transport == "tls":
            ping += ["--ca", cert]
        done = subprocess.run(ping, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert f"200 OK from {target}" in done.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_answer_tunes_the_garbage_collector_for_serving() -> None:
    before = gc.get_threshold()
    try:
        _cli_commands._tune_gc_for_serving()
        assert gc.get_threshold() == (10_000, 20, 20)
        assert gc.get_freeze_count() > 0  # the startup heap is out of the collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.anyio
async def test_quiet_answer_takes_calls_without_events_and_stops_on_sigterm() -> None:
    proc, uri = _start_answer("--quiet")
    try:
        async with await loopback_builder("alice").build() as alice:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(call.id, 5)
            await alice.terminate_session(call.id)
        code, err = await anyio.to_thread.run_sync(_stop, proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 143
    assert err.count("\n") == 1


_BLOCK_TRIO = (
    "import sys; sys.modules['trio'] = None; "  # import trio now raises ImportError
    "from rvoip_session_core.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "argv", [["options", "sip:127.0.0.1:9"], ["demo", "--no-ladder"], ["answer", "--port", "0"]]
)
def test_loop_trio_without_trio_is_a_one_line_error(argv: list[str]) -> None:
    """Issue 10: ``--loop trio`` without trio installed ended in an ImportError traceback.

    anyio imports its trio backend only inside ``anyio.run``, so the user got a long
    traceback instead of being told what to install. Now: one line naming
    ``pip install trio`` and the usage exit code, before any socket is opened.
    """
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_TRIO, *argv, "--loop", "trio"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == _cli_commands.EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "pip install trio" in result.stderr
    assert result.stdout == ""


def test_loop_trio_check_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli_commands.missing_loop("trio") is None  # installed in the dev venv
    assert _cli_commands.missing_loop(None) is None
    monkeypatch.setitem(sys.modules, "trio", None)
    assert _cli_commands.missing_loop("asyncio") is None
    assert main(["options", "sip:127.0.0.1:9", "--loop", "trio"]) == _cli_commands.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "rvoip: --loop trio needs trio, which is not installed: pip install trio\n"


def test_call_and_answer_with_srtp_and_the_refusal_without_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--srtp required`` on both ends encrypts; a caller without SRTP gets the 488."""
    answer = [sys.executable, "-m", "rvoip_session_core", "answer", "--port", "0"]
    proc = subprocess.Popen(
        [*answer, "--tone", "440", "--srtp", "required"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        target = proc.stdout.readline().split()[-1]
        assert main(["call", target, "--srtp", "required", "--duration", "0.4"]) == 0
        out = capsys.readouterr().out
        assert "media: SRTP AES_CM_128_HMAC_SHA1_80" in out
        assert "hung up" in out
        assert main(["call", target, "--duration", "0.2"]) != 0
        err = capsys.readouterr().err
        assert "488" in err
        assert "SRTP is required" in err
    finally:
        proc.terminate()
        proc.wait(timeout=10)
