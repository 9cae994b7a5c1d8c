"""Tests of ``--at`` timelines, ``answer --answer-after/--reject-after``, ``--ladder``,
``--sip-log`` and the exit codes of ``rvoip call`` / ``rvoip answer``.

The command line runs as a subprocess (its own event loop and signal handlers) against a
coordinator in the test on 127.0.0.1; every run is bounded by a timeout.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rvoip_session_core import (
    AutoAnswerHandler,
    CallEnded,
    CallFailed,
    CallState,
    DtmfReceived,
    MessageReceived,
    SessionCoordinator,
    SessionError,
)
from rvoip_session_core._cli_commands import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from rvoip_session_core._cli_timeline import (
    ACTIONS,
    MAX_AT_SECONDS,
    MAX_TIMELINE_ITEMS,
    RingThenDecide,
    TimedAction,
    TimelineError,
    answer_timing,
    parse_item,
    parse_timeline,
)
from rvoip_session_core.cli import main
from rvoip_session_core.testing import loopback_builder, uri_of, wait_until

RVOIP = [sys.executable, "-m", "rvoip_session_core"]


@pytest.fixture
def anyio_backend() -> str:
    """The command line runs its own loop in a subprocess: one backend here is enough."""
    return "asyncio"


# --------------------------------------------------------------------- the parser


def test_parse_timeline_sorts_by_time_and_keeps_ties_in_order() -> None:
    timeline = parse_timeline(
        ["5:dtmf=12", "2:hold", "4:resume", "6:transfer=sip:c@127.0.0.1:5090", "4:mute"]
    )
    assert [(a.at, a.describe()) for a in timeline] == [
        (2.0, "hold"),
        (4.0, "resume"),
        (4.0, "mute"),
        (5.0, "dtmf=12"),
        (6.0, "transfer=sip:c@127.0.0.1:5090"),
    ]
    assert parse_item("0.5:message=hello: world=1") == TimedAction(
        0.5, "message", "hello: world=1", "0.5:message=hello: world=1"
    )
    assert parse_item(" 1 :HANGUP").action == "hangup"
    assert parse_item("1:dtmf=*#ab").argument == "*#AB"


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("hold", "no ':'"),
        ("x:hold", "not a number"),
        ("-1:hold", "not a number"),
        ("inf:hold", "not a number"),
        ("1e3:hold", "not a number"),
        ("99999999:hold", "time over"),
        ("1:jump", "unknown action 'jump'"),
        ("1:hold=now", "takes no argument"),
        ("1:dtmf", "needs =DIGITS"),
        ("1:dtmf=12x", "DTMF digits"),
        ("1:transfer=carol", "not a SIP URI"),
        ("1:message=", "needs =TEXT"),
        ("1:message=" + "x" * 1301, "over 1300 bytes"),
    ],
)
def test_bad_items_are_one_line_usage_errors_naming_the_item(item: str, why: str) -> None:
    with pytest.raises(TimelineError) as raised:
        parse_timeline(["1:hold", item])
    text = str(raised.value)
    assert repr(item) in text
    assert why in text
    assert "\n" not in text


def test_too_many_items_are_refused() -> None:
    with pytest.raises(TimelineError, match="at most"):
        parse_timeline(["1:mute"] * (MAX_TIMELINE_ITEMS + 1))


_ITEM_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda t, name, arg: f"{t}:{name}{arg}",
        st.one_of(st.floats(allow_nan=True), st.integers(-5, 10**6), st.text(max_size=5)),
        st.one_of(st.sampled_from(sorted(ACTIONS)), st.text(max_size=8)),
        st.one_of(st.just(""), st.text(max_size=20).map(lambda s: "=" + s)),
    ),
)


@given(st.lists(_ITEM_TEXT, max_size=5))
def test_any_strings_parse_or_raise_one_line_naming_the_bad_item(items: list[str]) -> None:
    try:
        timeline = parse_timeline(items)
    except TimelineError as exc:
        text = str(exc)
        assert "\n" not in text
        assert "\r" not in text
        assert any(repr(item) in text for item in items)
    else:
        assert len(timeline) == len(items)
        assert [a.at for a in timeline] == sorted(a.at for a in timeline)
        for action in timeline:
            assert 0 <= action.at <= MAX_AT_SECONDS
            assert action.action in ACTIONS
            assert bool(action.argument) == bool(ACTIONS[action.action])
            assert action.item in items


def test_answer_timing_checks_its_flags() -> None:
    import argparse

    def args(**kw: object) -> argparse.Namespace:
        base: dict[str, object] = {"answer_after": None, "reject_after": None, "reject_code": 486}
        return argparse.Namespace(**{**base, **kw})

    assert answer_timing(args()) is None
    ringing = answer_timing(args(answer_after=2.5))
    assert ringing is not None
    assert (ringing.delay, ringing.reject_code) == (2.5, None)
    ringing = answer_timing(args(reject_after=1, reject_code=603))
    assert ringing is not None
    assert (ringing.delay, ringing.reject_code) == (1, 603)
    for bad in (
        args(answer_after=1, reject_after=1),
        args(answer_after=-1),
        args(answer_after=float("nan")),
        args(reject_after=1, reject_code=200),
        args(answer_after=1, reject=486),
        args(early_media=True, reject=486),
    ):
        with pytest.raises(TimelineError):
            answer_timing(bad)
    early = answer_timing(args(answer_after=2, early_media=True))
    assert early is not None
    assert early.on_ringing is not None
    alone = answer_timing(args(early_media=True))  # --early-media alone: 183, then answer
    assert alone is not None
    assert (alone.delay, alone.on_ringing is not None) == (0.0, True)


# --------------------------------------------------------------------- over loopback


async def _rvoip(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*RVOIP, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )

    return await anyio.to_thread.run_sync(run)


class _Events:
    """Every session event of a coordinator, collected by a background task."""

    def __init__(self) -> None:
        self.seen: list[object] = []
        self.direction: list[str] = []

    async def collect(self, coordinator: SessionCoordinator) -> None:
        async for event in coordinator.events():
            self.seen.append(event)

    async def directions(self, coordinator: SessionCoordinator) -> None:
        """Record each change of the answered calls' audio direction (hold as seen here)."""
        while True:
            for session in await coordinator.list_active_sessions():
                if session.state.is_established:
                    try:
                        direction = (await coordinator.get_media_info(session.id)).direction
                    except SessionError:
                        continue
                    if not self.direction or self.direction[-1] != direction:
                        self.direction.append(direction)
            await anyio.sleep(0.02)

    def of(self, kind: type) -> list[object]:
        return [e for e in self.seen if isinstance(e, kind)]


@pytest.fixture
async def bob() -> AsyncIterator[tuple[SessionCoordinator, _Events]]:
    events = _Events()
    async with (
        await loopback_builder("bob").build() as coordinator,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(events.collect, coordinator)
        tg.start_soon(events.directions, coordinator)
        await anyio.sleep(0)
        yield coordinator, events
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_call_timeline_holds_resumes_sends_dtmf_and_a_message_then_hangs_up(
    bob: tuple[SessionCoordinator, _Events], tmp_path: Path
) -> None:
    coordinator, events = bob
    log = tmp_path / "sip.log"
    done = await _rvoip(
        "call",
        uri_of(coordinator, "bob"),
        "--at",
        "0.3:hold",
        "--at",
        "0.8:resume",
        "--at",
        "1.0:dtmf=12",
        "--at",
        "1.4:message=hello bob",
        "--at",
        "1.8:hangup",
        "--ladder",
        "--sip-log",
        str(log),
    )
    assert done.returncode == EXIT_OK, done.stderr
    out = done.stdout
    for line in ("at 0.3s: hold", "at 0.8s: resume", "at 1s: dtmf=12", "at 1.8s: hangup"):
        assert line in out
    assert "hung up" in out
    # bob saw each action: held (recvonly) and resumed, the digits, the message.
    assert events.direction == ["sendrecv", "recvonly", "sendrecv"]
    assert await wait_until(lambda: len(events.of(DtmfReceived)) == 2)
    assert [e.digit for e in events.of(DtmfReceived)] == ["1", "2"]  # type: ignore[attr-defined]
    [message] = events.of(MessageReceived)
    assert message.message.body == b"hello bob"  # type: ignore[attr-defined]
    assert await wait_until(lambda: bool(events.of(CallEnded)))
    assert events.of(CallEnded)[0].reason == "remote hangup"  # type: ignore[attr-defined]
    # --ladder: both directions, the hold's sendonly offer among them.
    assert "SIP ladder" in out
    assert "INVITE (SDP sendonly)" in out
    assert "200 OK (INVITE)" in out  # a message received
    assert "200 OK (BYE)" in out  # waited for after our BYE
    # --sip-log: each message headed by time, direction and both addresses.
    text = log.read_text()
    host, port = coordinator.local_sip_address
    assert f"-> {host}:{port} (" in text  # sent to bob
    assert f"received {host}:{port} -> " in text
    assert text.count("\nMESSAGE sip:") == 1
    assert "a=sendonly" in text


@pytest.mark.anyio
async def test_answer_after_rings_first_and_a_cancel_ends_the_call() -> None:
    proc, uri = _start_answer("--answer-after", "5", "--max-calls", "1")
    try:
        async with await loopback_builder("alice").build() as alice:
            events = alice.events()
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            assert await wait_until(lambda: _state(alice, call.id) is CallState.Ringing, timeout=5)
            await alice.terminate_session(call.id)  # CANCEL while it rings
            with anyio.fail_after(5):
                async for event in events:
                    if isinstance(event, CallEnded):
                        break
        code, out = await anyio.to_thread.run_sync(_finish, proc)
    finally:
        _kill(proc)
    assert code == EXIT_OK
    assert "ended (cancelled" in out or "ended (" in out


@pytest.mark.anyio
async def test_answer_after_answers_once_the_delay_passed() -> None:
    proc, uri = _start_answer("--answer-after", "1", "--max-calls", "1")
    try:
        async with await loopback_builder("alice").build() as alice:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            started = anyio.current_time()
            await alice.wait_for_answer(call.id, 10)
            assert anyio.current_time() - started >= 0.9
            await alice.terminate_session(call.id)
        code, out = await anyio.to_thread.run_sync(_finish, proc)
    finally:
        _kill(proc)
    assert code == EXIT_OK
    assert "answered" in out


@pytest.mark.anyio
async def test_early_media_plays_while_ringing_then_answers() -> None:
    """``answer --answer-after 1 --early-media``: a 183 with SDP and RTP while the call
    rings (the caller is EarlyMedia and receives packets before the 200), then the 200."""
    proc, uri = _start_answer("--answer-after", "1", "--early-media", "--max-calls", "1")
    try:
        async with await loopback_builder("alice").build() as alice:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            with anyio.fail_after(10):
                while (await alice.get_session(call.id)).state is not CallState.EarlyMedia:
                    await anyio.sleep(0.02)
                while True:
                    stats = await alice.get_media_statistics(call.id)
                    if stats is not None and stats.packets_received >= 5:
                        break
                    await anyio.sleep(0.02)
            assert (await alice.get_session(call.id)).state is CallState.EarlyMedia
            await alice.wait_for_answer(call.id, 10)
            await alice.terminate_session(call.id)
        code, out = await anyio.to_thread.run_sync(_finish, proc)
    finally:
        _kill(proc)
    assert code == EXIT_OK
    assert "answered" in out


@pytest.mark.anyio
async def test_reject_after_refuses_with_the_reject_code() -> None:
    proc, uri = _start_answer("--reject-after", "0.2", "--reject-code", "486", "--max-calls", "1")
    try:
        async with await loopback_builder("alice").build() as alice:
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            with pytest.raises(CallFailed) as failed:
                await alice.wait_for_answer(call.id, 10)
        assert failed.value.status == 486
        code, _ = await anyio.to_thread.run_sync(_finish, proc)
    finally:
        _kill(proc)
    assert code == EXIT_OK


@pytest.mark.anyio
async def test_answer_timeline_holds_the_caller_and_hangs_up() -> None:
    proc, uri = _start_answer("--at", "0.3:hold", "--at", "0.8:hangup", "--max-calls", "1")
    watched = _Events()
    try:
        async with (
            await loopback_builder("alice").build() as alice,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(watched.directions, alice)
            events = alice.events()
            call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri)
            await alice.wait_for_answer(call.id, 10)
            reasons: list[str] = []
            with anyio.fail_after(10):
                async for event in events:
                    if isinstance(event, CallEnded):
                        reasons.append(event.reason)
                        break
            tg.cancel_scope.cancel()
        code, out = await anyio.to_thread.run_sync(_finish, proc)
    finally:
        _kill(proc)
    assert code == EXIT_OK
    assert watched.direction == ["sendrecv", "recvonly"]  # held by the answering side
    assert reasons == ["remote hangup"]
    assert "at 0.3s: hold" in out
    assert "at 0.8s: hangup" in out


# --------------------------------------------------------------------- exit codes


@pytest.mark.anyio
async def test_exit_1_when_the_call_is_refused_with_the_status_printed() -> None:
    proc, uri = _start_answer("--reject", "486")
    try:
        done = await _rvoip("call", uri, "--timeout", "10")
    finally:
        _kill(proc)
    assert done.returncode == EXIT_FAILED
    assert done.stderr.startswith("rvoip: call to ")
    assert "486 Busy Here" in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.anyio
async def test_exit_1_when_a_timeline_action_fails() -> None:
    async with await loopback_builder("bob", _Refusing()).build() as bob:
        done = await _rvoip(
            "call", uri_of(bob, "bob"), "--at", "0.2:transfer=sip:carol@127.0.0.1:9"
        )
    assert done.returncode == EXIT_FAILED, done.stdout + done.stderr
    assert "at 0.2s transfer=sip:carol@127.0.0.1:9 failed" in done.stderr
    assert "hung up" in done.stdout  # the refused transfer left the call to us to end
    assert done.stderr.count("\n") == 1


def test_exit_2_for_bad_timeline_items_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "sip:bob@127.0.0.1:9", "--at", "2:jump"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("rvoip: bad --at '2:jump': unknown action 'jump'")
    assert err.count("\n") == 1
    assert main(["answer", "--answer-after", "1", "--reject-after", "2"]) == EXIT_USAGE
    assert "exclude each other" in capsys.readouterr().err
    assert main(["answer", "--reject-after", "1", "--reject-code", "200"]) == EXIT_USAGE
    assert "4xx-6xx" in capsys.readouterr().err


def test_exit_2_for_an_unwritable_sip_log(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "no" / "such" / "dir.log"
    assert main(["call", "sip:bob@127.0.0.1:9", "--sip-log", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("rvoip: cannot write --sip-log")
    assert err.count("\n") == 1


def test_exit_2_for_a_configuration_error_not_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--user`` without a password said "network error" (exit 3).

    ``rvoip call`` and ``rvoip answer`` mapped every ``ConfigurationError`` from the
    builder to EXIT_NETWORK, so a script could not tell a missing flag from a port in
    use; ``rvoip register`` already said 2. A configuration error is a usage error: 2.
    """
    monkeypatch.delenv("RVOIP_PASSWORD", raising=False)
    assert main(["call", "sip:bob@127.0.0.1:9", "--user", "alice"]) == EXIT_USAGE
    assert capsys.readouterr().err == "rvoip: --user needs --password or $RVOIP_PASSWORD\n"
    assert main(["answer", "--port", "0", "--user", "alice"]) == EXIT_USAGE
    assert "--user needs --password" in capsys.readouterr().err


def test_exit_3_when_the_port_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        assert main(["call", "sip:bob@127.0.0.1:9", "--port", str(port)]) == EXIT_NETWORK
    err = capsys.readouterr().err
    assert "Address already in use" in err
    assert err.count("\n") == 1


def test_exit_4_when_nobody_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # takes the INVITE, never answers
        port = silent.getsockname()[1]
        assert main(["call", f"sip:bob@127.0.0.1:{port}", "--timeout", "0.5"]) == (EXIT_UNREACHABLE)
    err = capsys.readouterr().err
    assert err == f"rvoip: no answer from sip:bob@127.0.0.1:{port}\n"


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("call", "answer", "options", "register", "phone"):
        with pytest.raises(SystemExit) as leaving:
            main([command, "--help"])
        assert leaving.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        for text in ("0 ok", "1 call failed", "2 usage error", "3 network error", "4 no answer"):
            assert text in out, (command, text)


# --------------------------------------------------------------------- helpers


class _Refusing(AutoAnswerHandler):
    """Answers calls, refuses every REFER (603)."""

    async def on_incoming_transfer_request(
        self, session_id: str, target: str, referred_by: str | None
    ) -> bool:
        return False


def _state(coordinator: SessionCoordinator, session_id: str) -> CallState | None:
    try:
        return coordinator.registry.get(session_id).state
    except Exception:
        return None


def _start_answer(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*RVOIP, "answer", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("answering at sip:"), line
    return proc, line.split()[-1]


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=20)
    return proc.returncode, out


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.anyio
async def test_ring_then_decide_calls_its_ringing_hook_before_answering() -> None:
    """The ``--early-media`` hook: awaited while the call rings, inside the ring time."""
    rang: list[tuple[str, CallState | None]] = []

    async def hook(coordinator: SessionCoordinator, session_id: str) -> None:
        rang.append((session_id, _state(coordinator, session_id)))
        await anyio.sleep(0.1)

    ringing = RingThenDecide(0.4, on_ringing=hook)
    async with (
        await loopback_builder("bob", ringing).build() as bob,
        await loopback_builder("alice").build() as alice,
        anyio.create_task_group() as tg,
    ):
        ringing.attach(bob, tg.start_soon)
        call = await alice.create_outgoing_call("sip:alice@127.0.0.1", uri_of(bob, "bob"))
        started = anyio.current_time()
        await alice.wait_for_answer(call.id, 5)
        took = anyio.current_time() - started
        [(session_id, state)] = rang
        assert state is CallState.Ringing
        assert 0.35 <= took < 5  # answered once the 0.4 s ring time passed
        assert [s.id for s in await bob.list_active_sessions()] == [session_id]
        tg.cancel_scope.cancel()
