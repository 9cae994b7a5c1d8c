"""An IVR menu: answer, play a menu prompt, collect a digit, route; on a loopback set.

The menu prompt and the goodbye prompt are WAV files written to a temporary directory at
start (44.1 kHz beeps: the call resamples them to its codec's rate). Three callers dial
the IVR at once and press keys as RFC 4733 events:

- alice presses 1 (into the prompt: barge-in): the IVR transfers her (REFER) to the agent;
- bob presses 2: the IVR plays the goodbye prompt and hangs up;
- carol presses nothing: the menu is repeated once, then the IVR hangs up.

The IVR records carol's call two-sided (stereo: the IVR left, carol right).
Run: ``python examples/ivr_menu.py [asyncio|trio]``.
"""

from __future__ import annotations

import sys
import tempfile
import wave
from pathlib import Path

import anyio
import numpy as np

from rvoip_session_core.api import (
    AutoAnswerHandler,
    CallEnded,
    CallEstablished,
    CallHandler,
    CallSession,
    CollectEnd,
    SessionControl,
    SessionCoordinator,
    SessionManagerBuilder,
)

MENU_TIMEOUT = 2.0  # seconds to wait for a key after the menu


def write_beeps(path: Path, tones: list[tuple[float, float]], rate: int = 44100) -> Path:
    """A WAV of (frequency, seconds) beeps with short gaps: a stand-in for recorded speech."""
    parts = []
    for frequency, seconds in tones:
        t = np.arange(int(rate * seconds)) / rate
        parts.append(0.3 * np.sin(2 * np.pi * frequency * t))
        parts.append(np.zeros(rate // 10))
    samples = np.round(np.concatenate(parts) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


class Agent(AutoAnswerHandler):
    """The agent answers whatever reaches it."""

    async def on_call_established(
        self, call: CallSession, local_sdp: str | None, remote_sdp: str | None
    ) -> None:
        print(f"agent: talking to {call.from_}")


def builder(user: str, handler: CallHandler | None = None) -> SessionManagerBuilder:
    out = SessionManagerBuilder().with_sip_port(0).with_local_address(f"sip:{user}@127.0.0.1")
    return out.with_handler(handler) if handler is not None else out


async def serve(
    ivr: SessionCoordinator, session_id: str, prompts: dict[str, Path], agent_uri: str
) -> None:
    """One caller through the menu (the IVR's side of the call)."""
    caller = (await ivr.get_session(session_id)).from_
    if "carol" in caller:
        await ivr.start_recording(session_id, prompts["dir"] / "carol.wav", mode="stereo")
    for attempt in (1, 2):
        digit = await ivr.play_prompt(session_id, prompts["menu"], barge_in=True)
        got = await SessionControl.collect_digits(
            ivr, session_id, max_digits=1, timeout=MENU_TIMEOUT, initial=digit or ""
        )
        if got.end is CollectEnd.ENDED:
            return
        if got.digits == "1":
            print(f"ivr: {caller} pressed 1 -> agent")
            await ivr.transfer_session(session_id, agent_uri)
            return
        if got.digits == "2":
            print(f"ivr: {caller} pressed 2 -> goodbye")
            await ivr.play_prompt(session_id, prompts["goodbye"])
            await ivr.terminate_session(session_id)
            return
        if attempt == 1:
            print(f"ivr: no key from {caller}, menu again")
    print(f"ivr: no key from {caller} twice, hanging up")
    await ivr.terminate_session(session_id)


async def run_ivr(
    ivr: SessionCoordinator, prompts: dict[str, Path], agent_uri: str, calls: int
) -> None:
    """Serve each answered call in a task of its own until ``calls`` calls have ended."""
    ended = 0
    async with anyio.create_task_group() as tg:
        async for event in ivr.events():
            if isinstance(event, CallEstablished):
                tg.start_soon(serve, ivr, event.session_id, prompts, agent_uri)
            elif isinstance(event, CallEnded):
                ended += 1
                if ended == calls:
                    return


async def caller(coordinator: SessionCoordinator, name: str, target: str, keys: str) -> None:
    """Call the IVR, press ``keys`` 0.4 s into the menu, wait for the call's end."""
    events = coordinator.events()
    call = await coordinator.create_outgoing_call(f"sip:{name}@127.0.0.1", target)
    await coordinator.wait_for_answer(call.id, 5)
    if keys:
        await anyio.sleep(0.4)
        await coordinator.send_dtmf(call.id, keys)
    async for event in events:
        if isinstance(event, CallEnded) and event.session_id == call.id:
            print(f"{name}: call ended ({event.reason})")
            break
    events.close()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prompts = {
            "dir": folder,
            "menu": write_beeps(folder / "menu.wav", [(600, 0.3), (800, 0.3), (1000, 0.3)]),
            "goodbye": write_beeps(folder / "goodbye.wav", [(900, 0.3), (500, 0.4)]),
        }
        async with (
            await builder("ivr").build() as ivr,
            await builder("agent", Agent()).build() as agent,
            await builder("alice").build() as alice,
            await builder("bob").build() as bob,
            await builder("carol").build() as carol,
        ):
            host, port = ivr.local_sip_address
            target = f"sip:ivr@{host}:{port}"
            a_host, a_port = agent.local_sip_address
            agent_uri = f"sip:agent@{a_host}:{a_port}"
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_ivr, ivr, prompts, agent_uri, 3)
                    await anyio.sleep(0.1)
                    tg.start_soon(caller, alice, "alice", target, "1")
                    tg.start_soon(caller, bob, "bob", target, "2")
                    tg.start_soon(caller, carol, "carol", target, "")
            with wave.open(str(folder / "carol.wav")) as wav:
                seconds = wav.getnframes() / wav.getframerate()
                print(f"ivr: carol's call recorded, {wav.getnchannels()} channels, {seconds:.1f} s")
            for session in await alice.list_active_sessions():
                await alice.terminate_session(session.id)
            await anyio.sleep(0.2)
    print("ivr: done")


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
