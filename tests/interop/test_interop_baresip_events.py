"""SUBSCRIBE/NOTIFY (RFC 6665) with baresip, a real softphone, through its presence module.

baresip 1.0's ``presence`` module subscribes to each contact marked ``presence=p2p``
(Event: presence, RFC 3856) and serves its own presence to subscribers. With it:

- baresip subscribes to a coordinator serving ``presence`` through the generic
  ``with_event_package`` (a PIDF document, RFC 3863); a change pushed by the provider
  reaches baresip, whose contact list shows it.
- a coordinator subscribes to baresip's presence and reads its PIDF documents (the
  first, then the one baresip sends when its status is set online).

baresip's ``mwi`` module is not exercised: it subscribes to ``message-summary`` only
after a successful REGISTER to the account's own domain (UA_EVENT_REGISTER_OK), and a
coordinator is no registrar; our message-summary notifier and subscriber are tested
against SIPp instead (test_interop_subscriptions.py). Skipped, saying why, when
baresip is not installed. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from interop_baresip import HOST, Baresip, find_baresip

from rvoip_session_core import EventProvider, SessionManagerBuilder, Subscriber
from rvoip_transaction_core.testing import self_signed_certificate

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PIDF = "application/pidf+xml"


def pidf(entity: str, basic: str) -> bytes:
    """A minimal PIDF document (RFC 3863 §4.1): one tuple with a basic status."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
        f'<tuple id="rvoip"><status><basic>{basic}</basic></status></tuple></presence>'
    ).encode()


class Presence(EventProvider):
    """Presence of local users: ``open`` or ``closed`` (a test provider)."""

    content_type = PIDF

    def __init__(self) -> None:
        super().__init__()
        self.basic = "open"
        self.added: list[Subscriber] = []

    def document(self, resource: str, version: int) -> bytes | None:
        return pidf(f"sip:{resource}@{HOST}", self.basic)

    def subscriber_added(self, subscriber: Subscriber) -> None:
        self.added.append(subscriber)


@pytest.fixture
def baresip_exe() -> str:
    exe = find_baresip()
    if exe is None:
        pytest.skip("baresip not found on PATH (Debian: apt-get install baresip-core)")
    return exe


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """baresip 1.0 always starts its TLS transport: it needs a certificate (unused here)."""
    files = self_signed_certificate(tmp_path_factory.mktemp("baresip-events"))
    if files is None:
        pytest.skip("openssl CLI not found: cannot generate baresip's certificate")
    return files


async def contacts_text(phone: Baresip) -> str:
    return await phone.command("contacts")


async def test_baresip_presence_subscribes_to_our_notifier(
    baresip_exe: str,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    builder: Callable[..., SessionManagerBuilder],
) -> None:
    provider = Presence()
    async with await builder(user="bob").with_event_package("presence", provider).build() as bob:
        host, port = bob.local_sip_address
        contact = f'"Bob" <sip:bob@{host}:{port}>;presence=p2p'
        phone = Baresip(
            baresip_exe,
            tmp_path,
            *tls_files,
            user="alice",
            modules=("contact.so", "presence.so"),
            contacts=(contact,),
        )
        async with phone:
            with anyio.fail_after(10):
                while not provider.added:
                    await anyio.sleep(0.05)
            (subscriber,) = provider.added
            assert (subscriber.package, subscriber.resource) == ("presence", "bob")
            assert "alice" in subscriber.from_
            with anyio.fail_after(10):
                while "online" not in (await contacts_text(phone)).lower():
                    await anyio.sleep(0.1)
            provider.basic = "closed"
            provider.changed("bob")
            with anyio.fail_after(10):
                while "offline" not in (text := (await contacts_text(phone)).lower()):
                    await anyio.sleep(0.1)
            assert "bob" in text
            assert bob.subscription_counts()["served_subscriptions"] == 1


async def test_we_subscribe_to_baresip_presence(
    baresip_exe: str,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    builder: Callable[..., SessionManagerBuilder],
) -> None:
    phone = Baresip(baresip_exe, tmp_path, *tls_files, user="carol", modules=("presence.so",))
    async with phone, await builder(user="alice").build() as alice:
        sub = await alice.subscribe(phone.uri("udp"), "presence", expires=600, accept=(PIDF,))
        with anyio.fail_after(10):
            first = await sub.next()
        assert first.state == "active"
        assert first.content_type is not None
        assert first.content_type.startswith(PIDF)
        assert b"<presence" in first.body, first.body
        # baresip's own status changes: its notifier sends the new document to us.
        await phone.command("presence_online")
        with anyio.fail_after(10):
            second = await sub.next()
        assert b"<basic>open</basic>" in second.body, second.body
        await sub.unsubscribe(timeout=10)
        assert sub.end_reason == "unsubscribed"
