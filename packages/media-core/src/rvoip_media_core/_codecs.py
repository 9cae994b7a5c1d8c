"""The codec interface and the codecs beyond G.711: G.722 and Opus, plus fmtp handling.

A codec has two halves:

* ``CodecInfo`` (frozen): what goes into SDP and RTP — the encoding name, the payload
  type (static or the default dynamic number), the RTP clock rate, the PCM sample rate
  (they differ for G.722 and may for Opus), the SDP channel count, the frame time.
* an ``AudioCodec`` instance (stateful, one per stream and direction pair): ``encode``
  one frame of int16 PCM to a payload, ``decode`` a payload to PCM, ``conceal`` a lost
  frame when the codec has its own packet-loss concealment (Opus), else ``None``.

PCMU/PCMA wrap media-core's G.711 kernel unchanged (``G711Codec``); the media engine
still encodes and decodes G.711 streams in batches through ``_g711`` directly. The
other codecs use maintained bindings of reference C implementations, optional at run
time: a codec whose library is missing is simply not offered (``available_codecs``)
and a log line says why.

* G.722: ``G722`` (the ``g722`` wheel, Sippy Software's libg722, a portable C version
  of the ITU-T G.722 reference / spandsp coder). Stateful ADPCM: one object per stream.
* Opus: libopus itself through cffi in ABI mode — the copy bundled with PyAV (``av``
  wheel) or the system's ``libopus.so.0``. Direct calls give what FFmpeg's wrapper does
  not: packet-loss concealment (``opus_decode`` with no data) and in-band FEC.
"""

from __future__ import annotations

import ctypes.util
import importlib
import importlib.util
import logging
import re
import sys
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rvoip_media_core._errors import MediaCoreError
from rvoip_media_core._g711 import (
    Codec,
    alaw_decode_bytes,
    alaw_encode_bytes,
    ulaw_decode_bytes,
    ulaw_encode_bytes,
)

log = logging.getLogger("rvoip_media_core.codecs")

MAX_FMTP_PARAMS = 32
"""fmtp parameters read from one a=fmtp line at most (the rest are ignored)."""
MAX_FMTP_LENGTH = 1024
"""Characters of an a=fmtp value read at most (longer values are cut)."""

OPUS_PAYLOAD_TYPE = 111
"""The dynamic payload number we offer Opus with (the one browsers and baresip use)."""
OPUS_MAX_PACKET = 1275
"""RFC 6716 §3.2.1: the largest Opus frame is 1275 bytes."""


class CodecError(MediaCoreError):
    """A codec cannot be created (unknown name, library missing) or refused its input."""


@attrs.frozen
class CodecInfo:
    """The wire description of a codec (RFC 3551 §6 table, RFC 7587 for Opus).

    Attributes:
        name: the encoding name as written in a=rtpmap (``PCMU``, ``G722``, ``opus``).
        payload_type: the static payload type, or the default dynamic one.
        clock_rate: the RTP timestamp clock (and the rate in a=rtpmap).
        sample_rate: the PCM rate the codec works at (G.722: 16000, clock 8000).
        channels: the channel count in a=rtpmap (Opus: always 2, RFC 7587 §7).
        static: True for an RFC 3551 static payload type.
        wideband: True when the E-model of the call is ITU-T G.107.1 (wideband).
    """

    name: str
    payload_type: int
    clock_rate: int
    sample_rate: int
    channels: int = 1
    static: bool = True
    wideband: bool = False

    def pcm_samples(self, ptime_ms: int) -> int:
        """PCM samples in one packet of ``ptime_ms`` (the engine's frame size)."""
        return self.sample_rate * ptime_ms // 1000

    def rtp_ticks(self, ptime_ms: int) -> int:
        """RTP timestamp units one packet of ``ptime_ms`` advances the timestamp by.

        RFC 3551 §4.5.2: G.722's RTP clock is 8000 Hz although it samples at 16 kHz, so a
        20 ms packet moves the timestamp by 160, not 320.
        """
        return self.clock_rate * ptime_ms // 1000


PCMU = CodecInfo("PCMU", 0, 8000, 8000)
PCMA = CodecInfo("PCMA", 8, 8000, 8000)
# RFC 3551 §4.5.2: "Even though the actual sampling rate for G.722 audio is 16,000 Hz,
# the RTP clock rate for the G722 payload format is 8,000 Hz because that value was
# erroneously assigned in RFC 1890".
G722 = CodecInfo("G722", 9, 8000, 16000, wideband=True)
# RFC 7587 §4.1: the RTP timestamp clock of Opus is always 48000; §7: the rtpmap media
# subtype is "opus/48000/2" whatever the real channel count.
OPUS = CodecInfo("opus", OPUS_PAYLOAD_TYPE, 48000, 48000, channels=2, static=False, wideband=True)

CODECS: dict[str, CodecInfo] = {info.name.lower(): info for info in (PCMU, PCMA, G722, OPUS)}
"""Every codec media-core knows, by lower-cased name (availability: ``available_codecs``)."""


def codec_info(name: str) -> CodecInfo:
    """The ``CodecInfo`` of a codec name (case-insensitive, RFC 4855 §3).

    Raises:
        CodecError: unknown codec name.
    """
    info = CODECS.get(name.lower())
    if info is None:
        raise CodecError(f"unknown codec {name[:40]!r} (known: {', '.join(CODECS)})")
    return info


# ---------------------------------------------------------------------------- fmtp

_FMTP_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def parse_fmtp(value: str) -> dict[str, str]:
    """The ``key=value`` parameters of an a=fmtp value (``useinbandfec=1; stereo=0``).

    RFC 7587 §6 / RFC 4855: parameters are separated by ";" with optional spaces; keys
    are case-insensitive (lower-cased here). Text from the network: at most
    ``MAX_FMTP_LENGTH`` characters and ``MAX_FMTP_PARAMS`` parameters are read; malformed
    pieces (no "=", a key of odd characters) are skipped, never an error.
    """
    params: dict[str, str] = {}
    for piece in value[:MAX_FMTP_LENGTH].split(";"):
        key, sep, val = piece.partition("=")
        key = key.strip()
        if not sep or not _FMTP_KEY.match(key):
            continue
        params[key.lower()] = val.strip()
        if len(params) >= MAX_FMTP_PARAMS:
            break
    return params


def format_fmtp(params: dict[str, str]) -> str:
    """The a=fmtp value of ``params`` in their order (``key=value;key=value``)."""
    return ";".join(f"{key}={value}" for key, value in params.items())


def _flag(params: dict[str, str], key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    return value == "1"


def _int_in(params: dict[str, str], key: str, low: int, high: int, default: int) -> int:
    value = params.get(key, "")
    if not value.isdigit() or len(value) > 9:
        return default
    return min(high, max(low, int(value)))


@attrs.frozen
class OpusParams:
    """The Opus fmtp parameters of RFC 7587 §6.1 that rvoip uses.

    Each side's fmtp says what *it* wants to receive: ours tells the peer's encoder,
    the peer's tells ours (``with_remote``). Defaults are the RFC's.

    Attributes:
        maxplaybackrate: the highest rate the receiver renders (8000..48000).
        stereo: the receiver prefers stereo (rvoip sends mono: it never asks for it).
        sprop_stereo: the sender may send stereo.
        useinbandfec: the receiver can use in-band FEC: the sender adds it.
        usedtx: the receiver prefers DTX (off by default: RFC 7587 §6.1 default 0).
        maxaveragebitrate: the receiver's cap on the average bitrate (6000..510000).
        cbr: the receiver prefers constant bitrate.
    """

    maxplaybackrate: int = 48000
    stereo: bool = False
    sprop_stereo: bool = False
    useinbandfec: bool = False
    usedtx: bool = False
    maxaveragebitrate: int | None = None
    cbr: bool = False

    @classmethod
    def from_fmtp(cls, value: str) -> OpusParams:
        """Parse an a=fmtp value (hostile text: anything odd becomes the default)."""
        p = parse_fmtp(value)
        mab = p.get("maxaveragebitrate")
        return cls(
            maxplaybackrate=_int_in(p, "maxplaybackrate", 8000, 48000, 48000),
            stereo=_flag(p, "stereo", False),
            sprop_stereo=_flag(p, "sprop-stereo", False),
            useinbandfec=_flag(p, "useinbandfec", False),
            usedtx=_flag(p, "usedtx", False),
            maxaveragebitrate=(
                None if mab is None else _int_in(p, "maxaveragebitrate", 6000, 510000, 510000)
            ),
            cbr=_flag(p, "cbr", False),
        )

    def to_fmtp(self) -> str:
        """The a=fmtp value (RFC 7587 §6.1 names)."""
        params = {
            "maxplaybackrate": str(self.maxplaybackrate),
            "stereo": "1" if self.stereo else "0",
            "sprop-stereo": "1" if self.sprop_stereo else "0",
            "useinbandfec": "1" if self.useinbandfec else "0",
        }
        if self.usedtx:
            params["usedtx"] = "1"
        if self.maxaveragebitrate is not None:
            params["maxaveragebitrate"] = str(self.maxaveragebitrate)
        if self.cbr:
            params["cbr"] = "1"
        return format_fmtp(params)


DEFAULT_OPUS_FMTP = OpusParams(useinbandfec=True)
"""What rvoip offers for Opus: in-band FEC on, mono, DTX off, full band."""


# ---------------------------------------------------------------------------- interface


class AudioCodec(Protocol):
    """One stream's coder: encodes what it sends, decodes what it receives.

    Frames are int16 PCM at ``info.sample_rate``; one ``encode`` call takes exactly one
    packet's worth (``info.pcm_samples(ptime)``) and returns its RTP payload.
    """

    info: CodecInfo
    payload_type: int

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """One frame of PCM to an RTP payload."""
        ...

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """One RTP payload (from the network: any bytes) to PCM.

        Raises:
            CodecError: the payload is not valid for the codec.
        """
        ...

    def conceal(self, samples: int, next_payload: bytes | None = None) -> NDArray[np.int16] | None:
        """``samples`` of PCM for a lost packet by the codec's own PLC, or None if it has none.

        ``next_payload`` (the packet after the lost one), when given and the codec carries
        in-band FEC, recovers the lost frame from it.
        """
        ...


class G711Codec:
    """PCMU/PCMA through media-core's G.711 kernel (the bytes API: one C call each way)."""

    __slots__ = ("_dec", "_enc", "info", "payload_type")

    def __init__(self, codec: Codec, payload_type: int | None = None) -> None:
        """A coder for ``codec`` (``Codec.PCMU`` or ``Codec.PCMA``)."""
        self.info = PCMU if codec is Codec.PCMU else PCMA
        self.payload_type = codec.value if payload_type is None else payload_type
        ulaw = codec is Codec.PCMU
        self._enc = ulaw_encode_bytes if ulaw else alaw_encode_bytes
        self._dec = ulaw_decode_bytes if ulaw else alaw_decode_bytes

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """G.711 codes of ``pcm`` (one byte per sample)."""
        return self._enc(np.ascontiguousarray(pcm, dtype=np.int16).tobytes())

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """PCM of G.711 codes (every byte is a valid code)."""
        return np.frombuffer(self._dec(bytes(payload)), dtype=np.int16)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> NDArray[np.int16] | None:
        """None: G.711 has no PLC of its own (the engine's G.711 Appendix I-style one runs)."""
        return None


# ---------------------------------------------------------------------------- G.722

_g722_module: Any = None
_g722_missing: str | None = None


def _g722() -> Any:
    global _g722_module, _g722_missing
    if _g722_module is None and _g722_missing is None:
        try:
            # the g722 wheel's module is named G722
            _g722_module = importlib.import_module("G722")
        except ImportError as exc:
            _g722_missing = f"the g722 package is not installed ({exc})"
            log.info("G.722 not offered: %s", _g722_missing)
    return _g722_module


class G722Codec:
    """G.722 at 64 kbit/s (mode 1) through libg722: 16 kHz PCM, RTP clock 8000.

    One 20 ms frame is 320 samples in and 160 bytes out (4 bits per 16 kHz sample).
    The coder is ADPCM with state on both sides: a stream keeps one ``G722Codec``.
    G.722 has no standard PLC in this library: ``conceal`` returns None and the engine's
    waveform-repetition concealer fills the gap.
    """

    __slots__ = ("_dec", "_enc", "info", "payload_type")

    def __init__(self, payload_type: int = G722.payload_type) -> None:
        """A fresh encoder/decoder pair.

        Raises:
            CodecError: the ``g722`` package is missing.
        """
        module = _g722()
        if module is None:
            raise CodecError(f"G.722 unavailable: {_g722_missing}")
        self.info = G722
        self.payload_type = payload_type
        self._enc = module.G722(16000, 64000)
        self._dec = module.G722(16000, 64000)

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """G.722 bytes of ``pcm`` (16 kHz; an even sample count gives whole bytes)."""
        result: bytes = self._enc.encode(np.ascontiguousarray(pcm, dtype=np.int16))
        return result

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """16 kHz PCM of G.722 bytes (two samples per byte; every byte decodes)."""
        if not payload:
            return np.zeros(0, dtype=np.int16)
        return np.frombuffer(self._dec.decode(bytes(payload)), dtype=np.int16)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> NDArray[np.int16] | None:
        """None: no codec PLC (the engine conceals)."""
        return None


# ---------------------------------------------------------------------------- Opus

_OPUS_CDEF = """
typedef struct OpusEncoder OpusEncoder;
typedef struct OpusDecoder OpusDecoder;
OpusEncoder *opus_encoder_create(int32_t Fs, int channels, int application, int *error);
void opus_encoder_destroy(OpusEncoder *st);
int32_t opus_encode(OpusEncoder *st, const int16_t *pcm, int frame_size,
                    unsigned char *data, int32_t max_data_bytes);
int opus_encoder_ctl(OpusEncoder *st, int request, ...);
OpusDecoder *opus_decoder_create(int32_t Fs, int channels, int *error);
void opus_decoder_destroy(OpusDecoder *st);
int opus_decode(OpusDecoder *st, const unsigned char *data, int32_t len, int16_t *pcm,
                int frame_size, int decode_fec);
int opus_packet_get_nb_samples(const unsigned char *data, int32_t len, int32_t Fs);
const char *opus_get_version_string(void);
"""
# opus_defines.h request numbers and values.
_OPUS_APPLICATION_VOIP = 2048
_OPUS_SET_BITRATE = 4002
_OPUS_SET_MAX_BANDWIDTH = 4004
_OPUS_SET_VBR = 4006
_OPUS_SET_COMPLEXITY = 4010
_OPUS_SET_INBAND_FEC = 4012
_OPUS_SET_PACKET_LOSS_PERC = 4014
_OPUS_SET_DTX = 4016
_OPUS_BANDWIDTHS = ((8000, 1101), (12000, 1102), (16000, 1103), (24000, 1104), (48000, 1105))

OPUS_BITRATE = 32000
"""Our Opus encoder's bitrate (bit/s) unless the peer's maxaveragebitrate is lower:
wideband speech at 20 ms is transparent well below it, and a packet stays ~80 bytes."""
OPUS_COMPLEXITY = 1
"""libopus encoder complexity 0..10 (``OpusCodec(complexity=...)`` per stream). Measured
here (``tools/bench/codecs.py``), a 20 ms frame costs ~2-4× less to encode at 1 than at 5,
and the encoder dominates an Opus call's CPU; for 32 kbit/s speech the low settings
keep SILK's quality. Raise it for music or when calls are few."""

_opus: tuple[Any, Any] | None = None
_opus_missing: str | None = None


def _libopus_candidates() -> list[str]:
    paths: list[str] = []
    # The PyAV wheel bundles libopus (FFmpeg's Opus codec is built on it). Find its folder
    # without importing av: that would load every FFmpeg library (~40 MB of RSS) into a
    # process that only wants libopus.
    spec = importlib.util.find_spec("av")
    if spec is not None and spec.origin is not None:
        root = Path(spec.origin).resolve().parent
        for folder in (root.parent / "av.libs", root / ".dylibs"):
            paths.extend(str(p) for p in sorted(folder.glob("libopus*")))
    system = ctypes.util.find_library("opus")
    if system:
        paths.append(system)
    if sys.platform.startswith("linux"):
        paths.append("libopus.so.0")
    return paths


def _libopus() -> tuple[Any, Any] | None:
    global _opus, _opus_missing
    if _opus is None and _opus_missing is None:
        try:
            import cffi
        except ImportError as exc:  # pragma: no cover - cffi is a dependency
            _opus_missing = f"cffi missing ({exc})"
        else:
            ffi = cffi.FFI()
            ffi.cdef(_OPUS_CDEF)
            for path in _libopus_candidates():
                try:
                    lib = ffi.dlopen(path)
                    lib.opus_get_version_string()
                except (OSError, AttributeError):
                    continue
                _opus = (ffi, lib)
                break
            else:
                _opus_missing = "libopus not found (pip install av, or apt-get install libopus0)"
        if _opus_missing is not None:
            log.info("Opus not offered: %s", _opus_missing)
    return _opus


def opus_version() -> str | None:
    """Libopus's version string, or None when Opus is unavailable."""
    opus = _libopus()
    if opus is None:
        return None
    ffi, lib = opus
    version: bytes = ffi.string(lib.opus_get_version_string())
    return version.decode("ascii", "replace")


class OpusCodec:
    """Opus (RFC 6716/7587) through libopus: mono, 48 kHz PCM, 20 ms frames by default.

    ``send`` is the peer's fmtp (what it wants to receive: FEC, DTX, bitrate cap, band)
    and configures our encoder; DTX stays off unless the peer asks for it. The decoder
    conceals a lost frame with libopus's PLC, or with the FEC data of the next packet.

    Args:
        payload_type: the negotiated dynamic payload number.
        send: the peer's Opus parameters.
        sample_rate: the PCM rate of the stream (48000; libopus also does 8/12/16/24 kHz).
        bitrate: the encoder's target bitrate in bit/s (capped by maxaveragebitrate).
        expected_loss_percent: the loss the encoder plans FEC for (libopus adds FEC only
            when this is above 0).
        complexity: libopus encoder complexity 0..10 (default ``OPUS_COMPLEXITY``).
    """

    __slots__ = ("_buf", "_dec", "_enc", "_ffi", "_lib", "_pcm", "_rate", "info", "payload_type")

    def __init__(
        self,
        payload_type: int = OPUS_PAYLOAD_TYPE,
        send: OpusParams = DEFAULT_OPUS_FMTP,
        *,
        sample_rate: int = 48000,
        bitrate: int = OPUS_BITRATE,
        expected_loss_percent: int = 5,
        complexity: int | None = None,
    ) -> None:
        """Create the libopus encoder and decoder.

        Raises:
            CodecError: libopus is unavailable or refused the settings.
        """
        opus = _libopus()
        if opus is None:
            raise CodecError(f"Opus unavailable: {_opus_missing}")
        ffi, lib = opus
        self._ffi, self._lib = ffi, lib
        self.info = OPUS if sample_rate == 48000 else attrs.evolve(OPUS, sample_rate=sample_rate)
        self.payload_type = payload_type
        self._rate = sample_rate
        err = ffi.new("int *")
        enc = lib.opus_encoder_create(sample_rate, 1, _OPUS_APPLICATION_VOIP, err)
        if enc == ffi.NULL or err[0] != 0:
            raise CodecError(f"opus_encoder_create failed ({err[0]})")
        self._enc = ffi.gc(enc, lib.opus_encoder_destroy)
        dec = lib.opus_decoder_create(sample_rate, 1, err)
        if dec == ffi.NULL or err[0] != 0:
            raise CodecError(f"opus_decoder_create failed ({err[0]})")
        self._dec = ffi.gc(dec, lib.opus_decoder_destroy)
        if send.maxaveragebitrate is not None:
            bitrate = min(bitrate, send.maxaveragebitrate)
        band = next(code for rate, code in _OPUS_BANDWIDTHS if rate >= send.maxplaybackrate)
        ctl = lib.opus_encoder_ctl
        ctl(self._enc, _OPUS_SET_BITRATE, ffi.cast("int32_t", bitrate))
        level = OPUS_COMPLEXITY if complexity is None else max(0, min(10, complexity))
        ctl(self._enc, _OPUS_SET_COMPLEXITY, ffi.cast("int32_t", level))
        ctl(self._enc, _OPUS_SET_MAX_BANDWIDTH, ffi.cast("int32_t", band))
        ctl(self._enc, _OPUS_SET_VBR, ffi.cast("int32_t", 0 if send.cbr else 1))
        # RFC 7587 §6.1: useinbandfec=1 says the receiver can use FEC, so we send it.
        ctl(self._enc, _OPUS_SET_INBAND_FEC, ffi.cast("int32_t", 1 if send.useinbandfec else 0))
        ctl(self._enc, _OPUS_SET_PACKET_LOSS_PERC, ffi.cast("int32_t", expected_loss_percent))
        # RFC 7587 §6.1: usedtx defaults to 0; DTX only when the receiver asks for it.
        ctl(self._enc, _OPUS_SET_DTX, ffi.cast("int32_t", 1 if send.usedtx else 0))
        self._buf = ffi.new("unsigned char[]", OPUS_MAX_PACKET)
        # 120 ms is the longest Opus packet (RFC 6716 §3.2.5): room for any decode.
        self._pcm = np.zeros(sample_rate * 120 // 1000, dtype=np.int16)

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """One Opus packet of ``pcm`` (2.5/5/10/20/40/60 ms of mono samples).

        Raises:
            CodecError: libopus refused the frame (e.g. a length that is no Opus frame).
        """
        ffi = self._ffi
        src = np.ascontiguousarray(pcm, dtype=np.int16)
        n = self._lib.opus_encode(
            self._enc, ffi.from_buffer("int16_t[]", src), len(src), self._buf, OPUS_MAX_PACKET
        )
        if n < 0:
            raise CodecError(f"opus_encode failed ({n}) for {len(src)} samples")
        result: bytes = ffi.buffer(self._buf, n)[:]
        return result

    def decode(self, payload: bytes) -> NDArray[np.int16]:
        """PCM of one Opus packet (any length it holds, up to 120 ms).

        Raises:
            CodecError: libopus found the packet corrupt.
        """
        return self._run(bytes(payload), len(self._pcm), 0)

    def conceal(self, samples: int, next_payload: bytes | None = None) -> NDArray[np.int16] | None:
        """``samples`` of libopus PLC, or the lost frame rebuilt from ``next_payload``'s FEC."""
        samples = max(1, min(samples, len(self._pcm)))
        if next_payload:
            try:
                # RFC 6716 §2.1.7 / opus_decode(decode_fec=1): the LBRR copy carried in the
                # next packet stands in for the lost one.
                return self._run(bytes(next_payload), samples, 1)
            except CodecError:
                pass
        try:
            return self._run(None, samples, 0)
        except CodecError:
            return np.zeros(samples, dtype=np.int16)

    def _run(self, payload: bytes | None, frame_size: int, fec: int) -> NDArray[np.int16]:
        ffi = self._ffi
        out = self._pcm
        data = ffi.NULL if payload is None else payload
        size = 0 if payload is None else len(payload)
        n = self._lib.opus_decode(
            self._dec, data, size, ffi.from_buffer("int16_t[]", out), frame_size, fec
        )
        if n < 0:
            raise CodecError(f"opus_decode failed ({n})")
        return out[:n].copy()


# ---------------------------------------------------------------------------- registry


def codec_available(name: str) -> bool:
    """Whether this process can run codec ``name`` (probing only that codec's library)."""
    key = name.upper()
    if key in ("PCMU", "PCMA"):
        return True
    if key == "G722":
        return _g722() is not None
    if key == "OPUS":
        return _libopus() is not None
    return False


def available_codecs() -> tuple[str, ...]:
    """Names of the codecs this process can run (G.711 always; G.722/Opus when installed)."""
    names = ["PCMU", "PCMA"]
    if _g722() is not None:
        names.append("G722")
    if _libopus() is not None:
        names.append("opus")
    return tuple(names)


def make_codec(
    name: str, payload_type: int | None = None, remote_fmtp: str | None = None
) -> AudioCodec:
    """A new coder for one stream.

    Args:
        name: codec name (case-insensitive).
        payload_type: the negotiated payload number (default: the codec's own).
        remote_fmtp: the peer's a=fmtp value for this codec (Opus reads it).

    Raises:
        CodecError: unknown codec, or its library is missing.
    """
    info = codec_info(name)
    pt = info.payload_type if payload_type is None else payload_type
    if info is PCMU:
        return G711Codec(Codec.PCMU, pt)
    if info is PCMA:
        return G711Codec(Codec.PCMA, pt)
    if info is G722:
        return G722Codec(pt)
    params = OpusParams() if remote_fmtp is None else OpusParams.from_fmtp(remote_fmtp)
    return OpusCodec(pt, params)


# ---------------------------------------------------------------------------- resampling

_soxr: Any = None


def _soxr_module() -> Any:
    global _soxr
    if _soxr is None:
        try:
            import soxr  # type: ignore[import-untyped]

            _soxr = soxr
        except ImportError as exc:
            raise CodecError(f"resampling needs the soxr package ({exc})") from None
    return _soxr


def resample(samples: ArrayLike, in_rate: int, out_rate: int) -> NDArray[np.int16]:
    """A whole int16 buffer resampled with libsoxr (high quality); a copy when rates match."""
    x = np.asarray(samples, dtype=np.int16).reshape(-1)
    if in_rate == out_rate:
        return x.copy()
    result: NDArray[np.int16] = _soxr_module().resample(x, in_rate, out_rate, quality="HQ")
    return result


class FrameResampler:
    """Streams int16 frames from one rate to another, a fixed-size frame out per frame in.

    libsoxr's streaming mode buffers up to 140 ms at high quality before it outputs
    anything, too late for a call. Instead each frame is resampled (libsoxr, high
    quality) together with the frame before and after it and only its own middle part
    is kept, so the filter always sees real neighbours: no edge effects, continuous
    tones, and one frame (20 ms) of added delay. Every ``process`` returns exactly
    ``len(frame) × out_rate / in_rate`` samples (silence for the first call).
    """

    __slots__ = ("_window", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """A resampler from ``in_rate`` to ``out_rate`` Hz, mono.

        Raises:
            CodecError: the soxr package is missing.
        """
        if in_rate != out_rate:
            _soxr_module()
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._window: list[NDArray[np.int16]] = []

    def process(self, frame: NDArray[np.int16]) -> NDArray[np.int16]:
        """One frame in, one (the previous one) ``len(frame) × out_rate / in_rate`` out."""
        if self.in_rate == self.out_rate:
            return frame
        frame = np.asarray(frame, dtype=np.int16)
        want = len(frame) * self.out_rate // self.in_rate
        window = self._window
        window.append(frame)
        if len(window) < 2:
            return np.zeros(want, dtype=np.int16)
        if len(window) > 3:
            del window[0]
        before = window[0] if len(window) == 3 else np.zeros(len(window[0]), dtype=np.int16)
        middle, after = window[-2], window[-1]
        data = np.concatenate((before, middle, after))
        out = _soxr_module().resample(data, self.in_rate, self.out_rate, quality="HQ")
        start = len(before) * self.out_rate // self.in_rate
        piece: NDArray[np.int16] = out[start : start + want]
        if len(piece) < want:
            piece = np.concatenate((piece, np.zeros(want - len(piece), dtype=np.int16)))
        return piece
