"""SDES-SRTP (RFC 3711 / RFC 4568): keys from ``a=crypto`` and protection via pylibsrtp."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import attrs
import pylibsrtp

from ._errors import SrtpError

__all__ = ["SRTP_SUITES", "SrtpContext", "SrtpKeyParams", "SrtpSessionKeys"]

SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
_KEY_LEN = 16
_SALT_LEN = 14


@attrs.frozen
class SrtpKeyParams:
    """One direction's SDES crypto parameters (RFC 4568 §6.1, AES-CM-128 suites)."""

    suite: str
    master_key: bytes = attrs.field(repr=False)
    master_salt: bytes = attrs.field(repr=False)
    tag: int = 1
    session_params: str = ""  # trailing key-params / session-params kept verbatim

    def __attrs_post_init__(self) -> None:
        if self.suite not in _PROFILES:
            raise SrtpError(f"unsupported SRTP crypto suite {self.suite!r}")
        if len(self.master_key) != _KEY_LEN or len(self.master_salt) != _SALT_LEN:
            raise SrtpError("SRTP master key must be 16 bytes and salt 14 bytes")

    @property
    def inline_key(self) -> str:
        """base64(master key || master salt), the ``inline:`` value."""
        return base64.b64encode(self.master_key + self.master_salt).decode("ascii")

    def to_crypto_attribute(self) -> str:
        """The ``a=crypto`` value: ``"<tag> <suite> inline:<key>"``."""
        value = f"{self.tag} {self.suite} inline:{self.inline_key}"
        return f"{value}{self.session_params}"

    @classmethod
    def from_crypto_attribute(cls, value: str) -> SrtpKeyParams:
        """Parse an ``a=crypto`` value such as ``"1 AES_CM_128_HMAC_SHA1_80 inline:..."``.

        Raises:
            SrtpError: malformed attribute, unsupported suite or bad key length.
        """
        text = value.strip()
        if text.startswith("a=crypto:"):
            text = text[len("a=crypto:") :]
        parts = text.split(None, 2)
        if len(parts) < 3:
            raise SrtpError(f"malformed crypto attribute {value!r}")
        tag_text, suite, rest = parts
        if not tag_text.isdigit() or len(tag_text) > 9:
            raise SrtpError(f"malformed crypto tag {tag_text!r}")
        key_param, _, session_params = rest.partition(" ")
        # RFC 4568 §9.2: only the first key param is used; several are ';'-separated.
        key_param = key_param.split(";", 1)[0]
        if not key_param.startswith("inline:"):
            raise SrtpError("crypto key method must be inline")
        # key||salt, then optional "|lifetime" and "|MKI:length" (RFC 4568 §6.1).
        b64 = key_param[len("inline:") :].split("|", 1)[0]
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise SrtpError("crypto inline key is not valid base64") from None
        if len(raw) != _KEY_LEN + _SALT_LEN:
            raise SrtpError(f"crypto inline key is {len(raw)} bytes, expected 30")
        return cls(
            suite,
            raw[:_KEY_LEN],
            raw[_KEY_LEN:],
            int(tag_text),
            f" {session_params}" if session_params else "",
        )

    @classmethod
    def generate(
        cls,
        rng: Callable[[int], bytes],
        suite: str = "AES_CM_128_HMAC_SHA1_80",
        tag: int = 1,
    ) -> SrtpKeyParams:
        """New random key material; pass a CSPRNG such as ``secrets.token_bytes``."""
        raw = rng(_KEY_LEN + _SALT_LEN)
        return cls(suite, raw[:_KEY_LEN], raw[_KEY_LEN:], tag)


@attrs.frozen
class SrtpSessionKeys:
    """The keys of both directions: ours (to protect) and the peer's (to unprotect)."""

    local: SrtpKeyParams
    remote: SrtpKeyParams


def _policy(params: SrtpKeyParams, ssrc_type: int) -> pylibsrtp.Policy:
    policy = pylibsrtp.Policy(
        key=params.master_key + params.master_salt,
        ssrc_type=ssrc_type,
        srtp_profile=_PROFILES[params.suite],
    )
    policy.allow_repeat_tx = True
    return policy


def _session(params: SrtpKeyParams, ssrc_type: int) -> pylibsrtp.Session:
    try:
        return pylibsrtp.Session(_policy(params, ssrc_type))
    except pylibsrtp.Error as exc:
        raise SrtpError(f"cannot create SRTP session: {exc}") from None


@attrs.define(eq=False, init=False)
class SrtpContext:
    """Protect outgoing and unprotect incoming RTP/RTCP for one session.

    RTP and RTCP of a direction share its master key (RFC 3711 §4.3: the SRTCP session
    keys are derived from the same master key and salt with their own labels).
    """

    _tx: pylibsrtp.Session = attrs.field(repr=False)
    _rx: pylibsrtp.Session = attrs.field(repr=False)
    _local: SrtpKeyParams = attrs.field(repr=False)
    _remote: SrtpKeyParams = attrs.field(repr=False)
    _rx_previous: pylibsrtp.Session | None = attrs.field(repr=False)

    def __init__(self, local: SrtpKeyParams, remote: SrtpKeyParams) -> None:
        self._tx = _session(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _session(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._local, self._remote = local, remote
        self._rx_previous = None

    @property
    def keys(self) -> SrtpSessionKeys:
        """The key parameters in use: ours (protect) and the peer's (unprotect)."""
        return SrtpSessionKeys(self._local, self._remote)

    def rekey(self, local: SrtpKeyParams, remote: SrtpKeyParams) -> None:
        """Switch to new key parameters (an offer/answer changed an ``a=crypto`` line).

        Only a direction whose parameters changed gets a new libsrtp session: one that
        kept its key keeps its rollover counter and replay window (RFC 3711 §3.3.1),
        which a fresh session would lose after 65,536 packets (about 22 minutes at 50
        packets/s), failing every packet's authentication from then on.

        Raises:
            SrtpError: libsrtp refused the new key (the old keys stay in use).
        """
        tx = (
            self._tx
            if local == self._local
            else _session(local, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        )
        if remote != self._remote:
            rx = _session(remote, pylibsrtp.Policy.SSRC_ANY_INBOUND)
            # RFC 4568 §7.1.4: the peer switches to its new key when it sees the answer;
            # its packets still in flight carry the old one. Keep the old context until
            # the new key authenticates a packet.
            self._rx_previous, self._rx = self._rx, rx
        self._tx, self._local, self._remote = tx, local, remote

    def protect_rtp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate an RTP packet."""
        try:
            return bytes(self._tx.protect(packet))
        except pylibsrtp.Error as exc:
            raise SrtpError(f"SRTP protect failed: {exc}") from None

    def unprotect_rtp(self, packet: bytes) -> bytes:
        """Authenticate and decrypt an SRTP packet.

        After a re-key of the peer's direction a packet the new key refuses is tried with
        the previous key (packets sent before the peer saw the answer); the first packet
        the new key accepts retires the previous one.
        """
        try:
            clear = bytes(self._rx.unprotect(packet))
        except pylibsrtp.Error as exc:
            return self._unprotect_previous(packet, exc, rtcp=False)
        if self._rx_previous is not None:
            self._rx_previous = None
        return clear

    def _unprotect_previous(self, packet: bytes, exc: pylibsrtp.Error, *, rtcp: bool) -> bytes:
        previous = self._rx_previous
        if previous is not None:
            try:
                if rtcp:
                    return bytes(previous.unprotect_rtcp(packet))
                return bytes(previous.unprotect(packet))
            except pylibsrtp.Error:
                pass
        kind = "SRTCP" if rtcp else "SRTP"
        raise SrtpError(f"{kind} unprotect failed: {exc}") from None

    def protect_rtcp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate a compound RTCP packet."""
        try:
            return bytes(self._tx.protect_rtcp(packet))
        except pylibsrtp.Error as exc:
            raise SrtpError(f"SRTCP protect failed: {exc}") from None

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """Authenticate and decrypt an SRTCP packet."""
        try:
            return bytes(self._rx.unprotect_rtcp(packet))
        except pylibsrtp.Error as exc:
            return self._unprotect_previous(packet, exc, rtcp=True)
