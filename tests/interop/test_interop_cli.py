"""SIPp against the ``rvoip`` command line (issue 15's acceptance).

- SIPp's CANCEL scenario calls ``rvoip answer --answer-after 5``: the CLI rings (180)
  at once, SIPp CANCELs during the ringing, gets 200 for the CANCEL and 487 for the
  INVITE, and the CLI reports the call ended.
- SIPp's UAS hold scenario is called by ``rvoip call --at 1:hold --at 2:resume --at
  3:hangup``: SIPp checks the sendonly re-INVITE, then the sendrecv one, then the BYE.

The CLI runs as a subprocess on 127.0.0.1 with free ports; every run is bounded.
"""

from __future__ import annotations

import subprocess
import sys

import anyio
import anyio.to_thread
import pytest
from interop_sipp import HOST, Sipp, free_udp_port

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

RVOIP = [sys.executable, "-m", "rvoip_session_core"]


async def test_sipp_cancels_while_rvoip_answer_rings(sipp: Sipp) -> None:
    proc = subprocess.Popen(
        [*RVOIP, "answer", "--port", "0", "--answer-after", "5", "--max-calls", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.startswith("answering at sip:"), line
        host, port = line.split()[-1].rsplit("@", 1)[1].rsplit(":", 1)
        started = anyio.current_time()
        result = await sipp.run(
            "uac_cancel.xml",
            local_port=free_udp_port(),
            remote=(host, int(port)),
            calls=1,
            timeout=15,
        )
        assert result.returncode == 0, result.report()
        assert (result.successful, result.failed) == (1, 0), result.report()
        assert anyio.current_time() - started < 5  # cancelled while ringing, not answered
        out, err = await anyio.to_thread.run_sync(lambda: proc.communicate(timeout=20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "answered" not in out
    assert ": ended (" in out


async def test_rvoip_call_timeline_holds_resumes_and_hangs_up_toward_sipp_uas(
    sipp: Sipp,
) -> None:
    port = free_udp_port()
    async with sipp.serve("uas_hold.xml", local_port=port, calls=1, timeout=20) as uas:
        argv = [
            *RVOIP,
            "call",
            f"sip:held@{HOST}:{port}",
            "--at",
            "1:hold",
            "--at",
            "2:resume",
            "--at",
            "3:hangup",
            "--ladder",
        ]

        def call() -> subprocess.CompletedProcess[str]:
            return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

        done = await anyio.to_thread.run_sync(call)
        result = await uas.finish(15)
    assert done.returncode == 0, done.stdout + done.stderr
    for text in ("at 1s: hold", "at 2s: resume", "at 3s: hangup", "INVITE (SDP sendonly)"):
        assert text in done.stdout
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (1, 0), result.report()
