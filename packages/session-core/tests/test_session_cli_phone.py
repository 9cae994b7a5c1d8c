"""Tests of ``rvoip phone``: the command parser, the call numbering, the dispatcher over a
coordinator, and the whole phone driven in a pseudo-terminal against calls on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import CallState, SessionCoordinator, SessionError
from rvoip_session_core._cli_phone import (
    COMMANDS,
    CallBook,
    PhoneCommand,
    PhoneDispatcher,
    PhoneHandler,
    PhoneUsageError,
    _LineEditor,
    parse_command,
)
from rvoip_session_core.testing import loopback_builder, uri_of, wait_until

# --------------------------------------------------------------------- the parser


def test_parse_commands() -> None:
    assert parse_command("  ") is None
    assert parse_command("dial sip:bob@127.0.0.1:5070") == PhoneCommand(
        "dial", None, ("sip:bob@127.0.0.1:5070",)
    )
    assert parse_command("answer") == PhoneCommand("answer")
    assert parse_command("ANSWER 2") == PhoneCommand("answer", 2)
    assert parse_command("transfer 1 sip:c@127.0.0.1:5090") == PhoneCommand(
        "transfer", 1, ("sip:c@127.0.0.1:5090",)
    )
    assert parse_command("atransfer 1 2") == PhoneCommand("atransfer", 1, ("2",))
    with pytest.raises(PhoneUsageError, match="not a call number"):
        parse_command("atransfer 1 sip:c@127.0.0.1")
    assert parse_command("dtmf 3 12*#a") == PhoneCommand("dtmf", 3, ("12*#A",))
    assert parse_command("msg sip:b@127.0.0.1 hello there  bob") == PhoneCommand(
        "msg", None, ("sip:b@127.0.0.1", "hello there  bob")
    )
    assert parse_command("exit") == PhoneCommand("quit")
    assert parse_command("?") == PhoneCommand("help")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("jump", "unknown command 'jump'"),
        ("dial", "usage: dial URI"),
        ("dial bob", "not a SIP URI"),
        ("hold", "usage: hold N"),
        ("hold 0", "not a call number"),
        ("hold one", "not a call number"),
        ("hold 1 2", "usage: hold N"),
        ("transfer 1", "usage: transfer N URI"),
        ("dtmf 1 12x", "DTMF digits"),
        ("msg sip:b@127.0.0.1", "usage: msg URI TEXT"),
        ('dial "sip:a@b', "No closing quotation"),
        ("x" * 3000, "over 2000"),
    ],
)
def test_bad_lines_are_one_line_errors(line: str, why: str) -> None:
    with pytest.raises(PhoneUsageError) as raised:
        parse_command(line)
    assert why in str(raised.value)
    assert "\n" not in str(raised.value)


@given(st.text(max_size=60))
def test_any_line_parses_or_is_a_one_line_usage_error(line: str) -> None:
    try:
        command = parse_command(line)
    except PhoneUsageError as exc:
        message = str(exc)
        assert "\n" not in message
    else:
        assert command is None or command.name in COMMANDS


@given(
    st.sampled_from(sorted(COMMANDS)),
    st.lists(st.one_of(st.integers(-3, 10**7).map(str), st.text(max_size=12)), max_size=3),
)
def test_commands_with_any_arguments_parse_or_fail_cleanly(name: str, words: list[str]) -> None:
    try:
        command = parse_command(" ".join([name, *words]))
    except PhoneUsageError as exc:
        message = str(exc)
        assert "\n" not in message
    else:
        assert command is not None
        assert command.name == name
        assert command.number is None or command.number >= 1


def test_call_book_numbers_calls_in_order_and_never_reuses() -> None:
    book = CallBook()
    assert book.number("a") == 1
    assert book.number("b") == 2
    assert book.number("a") == 1
    assert book.session(2) == "b"
    book.forget("a")
    assert book.session(1) is None
    assert book.number("c") == 3


def test_line_editor_handles_backspace_escapes_and_split_lines() -> None:
    editor = _LineEditor()
    assert editor.feed("dial sip:x") == []
    assert editor.feed("y\x7f\x7fz\x1b[A\r") == ["dial sip:z"]
    assert editor.feed("ca") == []
    assert editor.buffer == "ca"
    assert editor.feed("lls\nhelp\n") == ["calls", "help"]


# --------------------------------------------------------------------- the dispatcher


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SessionCoordinator, SessionCoordinator]]:
    async with (
        await loopback_builder("phone", PhoneHandler()).build() as phone,
        await loopback_builder("bob").build() as bob,
    ):
        yield phone, bob


async def _run(dispatcher: PhoneDispatcher, line: str) -> list[str]:
    command = parse_command(line)
    assert command is not None
    return await dispatcher.execute(command)


@pytest.mark.anyio
async def test_dispatcher_dials_holds_resumes_sends_dtmf_and_hangs_up(
    pair: tuple[SessionCoordinator, SessionCoordinator],
) -> None:
    phone, bob = pair
    dispatcher = PhoneDispatcher(phone)
    assert await _run(dispatcher, f"dial {uri_of(bob, 'bob')}") == [
        f"call 1: calling {uri_of(bob, 'bob')}"
    ]

    async def active() -> bool:
        rows = await dispatcher.rows()
        return bool(rows) and rows[0].state == "Active"

    assert await wait_until(active)
    assert await _run(dispatcher, "hold 1") == ["call 1: on hold"]
    [row] = await dispatcher.rows()
    assert (row.number, row.state, row.direction, row.codec) == (1, "OnHold", "out", "PCMU")
    assert await _run(dispatcher, "resume 1") == ["call 1: resumed"]
    assert await _run(dispatcher, "dtmf 1 12") == ["call 1: sent DTMF 12"]
    assert await _run(dispatcher, "mute 1") == ["call 1: muted"]
    assert await _run(dispatcher, "hold 2") == ["hold failed: no call 2 (type calls)"]
    assert (await _run(dispatcher, "calls"))[0].startswith("1: out sip:bob@")
    assert await _run(dispatcher, "hangup") == ["call 1: hung up"]
    assert await wait_until(lambda: _no_calls(bob))
    assert await _run(dispatcher, "calls") == ["no calls"]
    assert await _run(dispatcher, "answer") == ["answer failed: no call is ringing"]
    bob_uri = uri_of(bob, "bob")
    assert await _run(dispatcher, f"msg {bob_uri} hi bob") == [f"message to {bob_uri}: 200 OK"]
    assert (await _run(dispatcher, "reg"))[0].startswith("not registering")
    assert len(await _run(dispatcher, "help")) == len(COMMANDS)


@pytest.mark.anyio
async def test_dispatcher_answers_and_rejects_ringing_calls(
    pair: tuple[SessionCoordinator, SessionCoordinator],
) -> None:
    phone, bob = pair
    dispatcher = PhoneDispatcher(phone)
    first = await bob.create_outgoing_call("sip:bob@127.0.0.1", uri_of(phone, "phone"))

    async def ringing() -> bool:
        return any(row.state == "Ringing" for row in await dispatcher.rows())

    assert await wait_until(ringing)
    assert await _run(dispatcher, "answer") == ["call 1: answering"]
    await bob.wait_for_answer(first.id, 5)
    second = await bob.create_outgoing_call("sip:bob@127.0.0.1", uri_of(phone, "phone"))
    assert await wait_until(lambda: _ringing_rows(dispatcher, 2))
    assert await _run(dispatcher, "hangup") == ["hangup failed: 2 calls: say which (e.g. hangup 1)"]
    assert await _run(dispatcher, "reject 2") == ["call 2: rejected (486 Busy Here)"]
    with pytest.raises(SessionError) as refused:
        await bob.wait_for_answer(second.id, 5)
    assert getattr(refused.value, "status", None) == 486
    assert await _run(dispatcher, "quit") == ["bye"]
    assert dispatcher.quit


async def _ringing_rows(dispatcher: PhoneDispatcher, number: int) -> bool:
    return any(r.number == number and r.state == "Ringing" for r in await dispatcher.rows())


async def _no_calls(coordinator: SessionCoordinator) -> bool:
    return not await coordinator.list_active_sessions()


# --------------------------------------------------------------------- in a terminal

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


class _Terminal:
    """``rvoip phone`` on a pseudo-terminal: type lines, wait for text on the screen."""

    def __init__(self, *argv: str) -> None:
        master, slave = os.openpty()
        # 120 x 40, so rich lays the table out the same way on every machine.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rvoip_session_core", "phone", "--port", "0", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.screen = ""
        self._seen = 0

    def _pump(self, seconds: float) -> None:
        ready, _, _ = select.select([self.master], [], [], seconds)
        if ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the phone exited and the pty closed
                data = b""
            self.screen += _ANSI.sub("", data.decode("utf-8", "replace"))

    def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait for ``pattern`` after the last match (like pexpect); returns the match."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            found = compiled.search(self.screen, self._seen)
            if found is not None:
                self._seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self._pump(0.1)
                found = compiled.search(self.screen, self._seen)
                if found is not None:
                    self._seen = found.end()
                    return found
                raise AssertionError(f"{pattern!r} not on screen; tail:\n{self.screen[-2000:]}")
            self._pump(min(left, 0.2))

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> int | None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=10)
        os.close(self.master)
        return code


async def _directions(coordinator: SessionCoordinator, seen: list[str]) -> None:
    while True:
        for session in await coordinator.list_active_sessions():
            if session.state.is_established:
                try:
                    direction = (await coordinator.get_media_info(session.id)).direction
                except SessionError:
                    continue
                if not seen or seen[-1] != direction:
                    seen.append(direction)
        await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_phone_in_a_terminal_dials_holds_resumes_transfers_and_answers(
    anyio_backend: str,
) -> None:
    """The issue's acceptance: driven through a pty, the phone places a call to bob,
    holds and resumes it (bob sees recvonly, then sendrecv), transfers bob to carol
    (carol gets bob's call, our leg ends), answers alice's incoming call and hangs up.
    """
    if anyio_backend != "asyncio":
        pytest.skip("the phone runs its own loop in a subprocess: one backend is enough")
    directions: list[str] = []
    term = _Terminal("--tone", "440")
    try:
        async with (
            await loopback_builder("bob").build() as bob,
            await loopback_builder("carol").build() as carol,
            await loopback_builder("alice").build() as alice,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_directions, bob, directions)
            run = anyio.to_thread.run_sync
            title = await run(term.expect, r"rvoip phone (sip:rvoip@127\.0\.0\.1:\d+)")
            phone_uri = title.group(1)
            await run(term.expect, r"phone>")
            term.type(f"dial {uri_of(bob, 'bob')}")
            await run(term.expect, r"call 1: connected")
            await run(term.expect, r"│ 1 │ sip:bob@127\.0\.0\.1:\d+ +│ out │ Active +│ PCMU")
            term.type("hold 1")
            await run(term.expect, r"call 1: on hold")
            await run(term.expect, r"│ 1 │ sip:bob@\S+ +│ out │ OnHold")
            assert await wait_until(lambda: directions[-1:] == ["recvonly"])
            term.type("resume 1")
            await run(term.expect, r"call 1: resumed")
            assert await wait_until(lambda: directions[-1:] == ["sendrecv"])
            term.type(f"transfer 1 {uri_of(carol, 'carol')}")
            await run(term.expect, r"call 1: transferring to sip:carol@")
            await run(term.expect, r"call 1: ended \(")
            assert await wait_until(lambda: _established(carol))
            assert await wait_until(lambda: _one_call(bob))  # the new call, with carol

            incoming = await alice.create_outgoing_call("sip:alice@127.0.0.1", phone_uri)
            await run(term.expect, r"call 2: incoming from sip:alice@127\.0\.0\.1")
            await run(term.expect, r"│ 2 │ sip:alice@\S+ +│ in +│ Ringing")
            term.type("answer")
            await alice.wait_for_answer(incoming.id, 10)
            await run(term.expect, r"call 2: connected")
            term.type("hangup 2")
            await run(term.expect, r"call 2: hung up")
            assert await wait_until(lambda: _no_calls(alice))
            term.type("quit")
            await run(term.expect, r"bye")
            code = await run(term.proc.wait, 15)
            tg.cancel_scope.cancel()
    finally:
        term.close()
    assert code == 0


async def _established(coordinator: SessionCoordinator) -> bool:
    sessions = await coordinator.list_active_sessions()
    return any(s.state is CallState.Active for s in sessions)


async def _one_call(coordinator: SessionCoordinator) -> bool:
    return len(await coordinator.list_active_sessions()) == 1


def test_phone_without_rich_is_a_one_line_usage_error() -> None:
    block = (
        "import sys; sys.modules['rich'] = None; "
        "import importlib.util as u; real = u.find_spec; "
        "u.find_spec = lambda n, *a: None if n == 'rich' else real(n, *a); "
        "from rvoip_session_core.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", block, "phone", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "rvoip: rvoip phone needs rich, which is not installed: "
        "pip install 'rvoip-session-core[phone]'\n"
    )


@pytest.mark.anyio
async def test_phone_driven_through_a_pipe_prints_plain_lines(anyio_backend: str) -> None:
    """A script may drive the phone through pipes: no table is redrawn, every line shows."""
    if anyio_backend != "asyncio":
        pytest.skip("the phone runs its own loop in a subprocess: one backend is enough")
    async with await loopback_builder("bob").build() as bob:
        script = f"dial {uri_of(bob, 'bob')}\n"

        def drive() -> subprocess.CompletedProcess[str]:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rvoip_session_core", "phone", "--port", "0"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(script)
            proc.stdin.flush()
            lines = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                lines.append(line)
                if "call 1: connected" in line or not line:
                    break
            proc.stdin.write("calls\nhangup 1\nquit\n")
            proc.stdin.close()
            watchdog = threading.Timer(30, proc.kill)  # bounds the read below
            watchdog.start()
            try:
                out = proc.stdout.read()  # until the phone exits and closes its end
                proc.wait(timeout=20)
            finally:
                watchdog.cancel()
            err = proc.stderr.read() if proc.stderr is not None else ""
            return subprocess.CompletedProcess(
                proc.args, proc.returncode, "".join(lines) + out, err
            )

        done = await anyio.to_thread.run_sync(drive)
        assert await wait_until(lambda: _no_calls(bob))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("rvoip phone sip:rvoip@127.0.0.1:")
    assert "call 1: connected" in out
    assert re.search(r"^1: out sip:bob@127\.0\.0\.1:\d+ Active codec PCMU", out, re.M), out
    assert "call 1: hung up" in out
    assert "┏" not in out  # no table drawn into a pipe
    assert out.rstrip().endswith("bye")
