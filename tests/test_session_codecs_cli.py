"""rvoip↔rvoip over real UDP loopback with each codec, through the CLI.

``rvoip answer --codecs opus,g722,pcmu --tone 1000`` is called by ``rvoip call --codecs X
--record file``: the call line names the codec and the E-model (G.107.1 for the wideband
codecs, G.107 for G.711), and the recording (8 kHz WAV, resampled from the call's rate)
holds the 1 kHz tone.
"""

from __future__ import annotations

import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

CASES = [("g722", "G722", "G.107.1"), ("opus", "opus", "G.107.1"), ("pcmu", "PCMU", "G.107")]


@pytest.fixture(scope="module")
def answerer() -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "rvoip_session_core",
            "answer",
            "--port",
            "0",
            "--codecs",
            "opus,g722,pcmu",
            "--tone",
            "1000",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("answering at sip:"), line
    try:
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize(("flag", "codec", "model"), CASES)
def test_call_with_each_codec(
    answerer: str, tmp_path: Path, flag: str, codec: str, model: str
) -> None:
    record = tmp_path / f"{flag}.wav"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rvoip_session_core",
            "call",
            answerer,
            "--codecs",
            flag,
            "--duration",
            "2",
            "--record",
            str(record),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    quality = next(line for line in result.stdout.splitlines() if " MOS " in line)
    assert quality.startswith(f"{codec} MOS ")
    assert f"({model})" in quality
    mos = float(quality.split()[2])
    assert mos > 4.0
    with wave.open(str(record)) as wav:
        assert wav.getframerate() == 8000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    tail = samples[len(samples) // 3 :].astype(float)
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    assert abs(np.argmax(spectrum) * 8000 / len(tail) - 1000) < 5
