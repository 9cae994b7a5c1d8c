"""Typed views of SDP attribute values: rtpmap, fmtp, rtcp and crypto (RFC 8866, 3605, 4568).

Each class parses the value part of its ``a=`` line (after the colon) with ``parse``
raising :class:`SdpParseError`, and ``str()`` gives that value back.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Self

import attrs

from ._errors import SipParseError

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Crypto",
    "CryptoKey",
    "Fmtp",
    "Rtcp",
    "RtpMap",
    "SdpParseError",
]


class SdpParseError(SipParseError):
    """An SDP body is malformed (answer 400, the peer's fault)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status=400)


_WS = re.compile(r"[ \t]+")


def parse_uint(text: str, what: str) -> int:
    """An unsigned decimal integer (ASCII digits only), else SdpParseError."""
    # isascii() + isdigit() is exactly [0-9]+ (no regex call on this hot path).
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise SdpParseError(f"invalid {what}: {text[:30]!r}")
    return int(text)


def split_fields(text: str) -> list[str]:
    """Split on runs of spaces/tabs, dropping empty fields (tolerates double spaces)."""
    if "\t" not in text:  # hot path: single spaces, as nearly every UA writes them
        fields = text.split(" ")
        if "" not in fields:
            return fields
    return [f for f in _WS.split(text) if f]


@attrs.frozen
class Attribute:
    """One ``a=`` line: ``name`` and ``value`` (None for a flag such as ``a=recvonly``)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@attrs.frozen
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 8866 §6.6)."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse the attribute value, e.g. ``"111 opus/48000/2"``.

        Raises:
            SdpParseError: malformed value.
        """
        fields = split_fields(value)
        if len(fields) != 2:
            raise SdpParseError(f"malformed rtpmap {value[:40]!r}")
        parts = fields[1].split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpParseError(f"malformed rtpmap encoding {fields[1][:40]!r}")
        channels = parse_uint(parts[2], "rtpmap channels") if len(parts) == 3 else None
        return cls(
            parse_uint(fields[0], "rtpmap payload type"),
            parts[0],
            parse_uint(parts[1], "rtpmap clock rate"),
            channels,
        )

    def __str__(self) -> str:
        tail = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"

    def as_attribute(self) -> Attribute:
        """This mapping as an ``a=rtpmap`` attribute."""
        return self._attribute

    @functools.cached_property
    def _attribute(self) -> Attribute:
        # hot path (every SDP answer and offer): the value is frozen, and the codec
        # tables' and the parsed offers' (memoised) RtpMaps are shared across calls.
        return Attribute("rtpmap", str(self))


# RFC 3551 §6 table 4/5: static audio/video payload types (used when no rtpmap is given).
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    pt: RtpMap(pt, name, rate, ch)
    for pt, name, rate, ch in (
        (0, "PCMU", 8000, 1),
        (3, "GSM", 8000, 1),
        (4, "G723", 8000, 1),
        (5, "DVI4", 8000, 1),
        (6, "DVI4", 16000, 1),
        (7, "LPC", 8000, 1),
        (8, "PCMA", 8000, 1),
        (9, "G722", 8000, 1),
        (10, "L16", 44100, 2),
        (11, "L16", 44100, 1),
        (12, "QCELP", 8000, 1),
        (13, "CN", 8000, 1),
        (14, "MPA", 90000, None),
        (15, "G728", 8000, 1),
        (16, "DVI4", 11025, 1),
        (17, "DVI4", 22050, 1),
        (18, "G729", 8000, 1),
        (25, "CelB", 90000, None),
        (26, "JPEG", 90000, None),
        (28, "nv", 90000, None),
        (31, "H261", 90000, None),
        (32, "MPV", 90000, None),
        (33, "MP2T", 90000, None),
        (34, "H263", 90000, None),
    )
}


@attrs.frozen
class Fmtp:
    """``a=fmtp:<format> <format specific parameters>`` (RFC 8866 §6.15)."""

    format: str
    params: str

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse e.g. ``"101 0-16"`` or ``"96 packetization-mode=1;profile-level-id=42e01f"``.

        Raises:
            SdpParseError: no format.
        """
        fmt, _, params = value.partition(" ")
        if not fmt:
            raise SdpParseError(f"malformed fmtp {value[:40]!r}")
        return cls(fmt, params.strip(" \t"))

    def __str__(self) -> str:
        return f"{self.format} {self.params}" if self.params else self.format

    def parameters(self) -> dict[str, str | None]:
        """``key=value`` pairs split on ``;`` (keys as written; a bare item maps to None)."""
        out: dict[str, str | None] = {}
        for item in self.params.split(";"):
            item = item.strip(" \t")
            if not item:
                continue
            key, eq, val = item.partition("=")
            out[key.strip(" \t")] = val.strip(" \t") if eq else None
        return out


@attrs.frozen
class Rtcp:
    """``a=rtcp:<port> [<nettype> <addrtype> <address>]`` (RFC 3605 §2.1)."""

    port: int
    nettype: str | None = None
    addrtype: str | None = None
    address: str | None = None

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse e.g. ``"53027 IN IP4 199.7.173.162"`` or ``"4001"``.

        Raises:
            SdpParseError: malformed value.
        """
        fields = split_fields(value)
        if len(fields) not in (1, 4):
            raise SdpParseError(f"malformed rtcp attribute {value[:40]!r}")
        port = parse_uint(fields[0], "rtcp port")
        if port > 65535:
            # RFC 3605 §2.1: rtcp-attribute = "a=rtcp:" port ... (a 16-bit transport port).
            raise SdpParseError(f"rtcp port out of range: {port}")
        if len(fields) == 1:
            return cls(port)
        return cls(port, fields[1], fields[2], fields[3])

    def __str__(self) -> str:
        if self.address is None:
            return str(self.port)
        return f"{self.port} {self.nettype or 'IN'} {self.addrtype or 'IP4'} {self.address}"


@attrs.frozen
class CryptoKey:
    """One key-param of a crypto attribute (RFC 4568 §9.1).

    For ``inline``: ``key_salt`` is the base64 concatenated master key and salt,
    ``lifetime`` the text as sent (``"2^20"`` or ``"1048576"``), ``mki``/``mki_length``
    the MKI value and its byte length. Other key methods keep their key-info in
    ``key_salt`` unparsed.
    """

    key_salt: str
    lifetime: str | None = None
    mki: int | None = None
    mki_length: int | None = None
    method: str = "inline"

    @classmethod
    def inline(
        cls,
        key_and_salt: bytes,
        lifetime: str | None = None,
        mki: int | None = None,
        mki_length: int | None = None,
    ) -> Self:
        """An inline key from raw master key || master salt bytes (RFC 4568 §6.1 base64)."""
        return cls(base64.b64encode(key_and_salt).decode("ascii"), lifetime, mki, mki_length)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse ``inline:<key||salt>[|<lifetime>][|<mki>:<length>]``.

        Raises:
            SdpParseError: malformed key-param.
        """
        method, colon, info = text.partition(":")
        if not colon or not method or not info:
            raise SdpParseError(f"malformed crypto key-param {text[:40]!r}")
        if method.lower() != "inline":
            return cls(info, method=method)
        parts = info.split("|")
        if len(parts) > 3 or not parts[0]:
            raise SdpParseError(f"malformed crypto key-info {info[:40]!r}")
        lifetime: str | None = None
        mki: int | None = None
        mki_length: int | None = None
        for part in parts[1:]:
            if ":" in part and mki is None:
                value, _, length = part.partition(":")
                mki = parse_uint(value, "crypto MKI")
                mki_length = parse_uint(length, "crypto MKI length")
            elif lifetime is None and mki is None:
                # RFC 4568 §9.1: lifetime = ["2^"] 1*(DIGIT)
                if part.startswith("2^"):
                    if parse_uint(part[2:], "crypto lifetime") > 64:
                        raise SdpParseError(f"crypto lifetime too large: {part[:30]!r}")
                else:
                    parse_uint(part, "crypto lifetime")
                lifetime = part
            else:
                raise SdpParseError(f"malformed crypto key-info {info[:40]!r}")
        return cls(parts[0], lifetime, mki, mki_length, method)

    def __str__(self) -> str:
        out = f"{self.method}:{self.key_salt}"
        if self.lifetime is not None:
            out += f"|{self.lifetime}"
        if self.mki is not None:
            out += f"|{self.mki}:{self.mki_length if self.mki_length is not None else 1}"
        return out

    @property
    def lifetime_packets(self) -> int | None:
        """The lifetime as a packet count (``2^20`` → 1048576), None if not given."""
        if self.lifetime is None:
            return None
        if self.lifetime.startswith("2^"):
            return 1 << int(self.lifetime[2:])
        return int(self.lifetime)

    def key_and_salt(self) -> bytes:
        """The decoded master key concatenated with the master salt.

        Raises:
            SdpParseError: not valid base64 (or not an inline key).
        """
        if self.method.lower() != "inline":
            raise SdpParseError(f"crypto key method {self.method!r} has no inline key")
        text = self.key_salt
        try:
            # RFC 4568 §6.1: base64 of key||salt; some UAs drop the '=' padding.
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SdpParseError("crypto inline key is not base64") from None


@attrs.frozen
class Crypto:
    """``a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]`` (RFC 4568 §9.1)."""

    tag: int
    suite: str
    key_params: tuple[CryptoKey, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> Self:
        """Parse e.g. ``"1 AES_CM_128_HMAC_SHA1_80 inline:PS1u...|2^20|1:32"``.

        Raises:
            SdpParseError: malformed value.
        """
        fields = split_fields(value)
        if len(fields) < 3:
            raise SdpParseError(f"malformed crypto attribute {value[:40]!r}")
        keys = tuple(CryptoKey.parse(k) for k in fields[2].split(";"))
        return cls(parse_uint(fields[0], "crypto tag"), fields[1], keys, tuple(fields[3:]))

    def __str__(self) -> str:
        keys = ";".join(str(k) for k in self.key_params)
        return " ".join([str(self.tag), self.suite, keys, *self.session_params])

    def as_attribute(self) -> Attribute:
        """This crypto line as an ``a=crypto`` attribute."""
        return Attribute("crypto", str(self))
