"""rvoip_media_core: the media plane above rvoip-rtp-core.

G.711 and jitter-buffer C kernel (numpy fallback), PLC, tones, WAV, mixing, E-model
quality and the batch media engine.
"""

from rvoip_media_core._backend import BACKEND, KERNEL_ENV
from rvoip_media_core._driver import PHASES, SPLIT_ABOVE, ClockStats, MediaClock, run_media_engine
from rvoip_media_core._emodel import (
    G711_BPL_APPENDIX_I_PLC,
    G711_BPL_NO_PLC,
    G711_IE,
    EModelParams,
    EModelResult,
    LossRunTracker,
    QualityEstimate,
    emodel,
    emodel_r_factor,
    mos_from_r,
    quality_from_statistics,
    quality_metrics,
)
from rvoip_media_core._engine import (
    MediaEngine,
    MediaStream,
    Outgoing,
    RtpSessionLike,
    StreamStatistics,
)
from rvoip_media_core._errors import MediaCoreError, WavFormatError
from rvoip_media_core._g711 import (
    Codec,
    FrameCodec,
    alaw_decode,
    alaw_decode_bytes,
    alaw_encode,
    alaw_encode_bytes,
    decode,
    encode,
    ulaw_decode,
    ulaw_decode_bytes,
    ulaw_encode,
    ulaw_encode_bytes,
)
from rvoip_media_core._jitter import (
    InsertResult,
    JitterBuffer,
    JitterStats,
    KernelHandles,
    PlayBatch,
    PopStatus,
    insert_many,
    make_handles,
    pop_many,
)
from rvoip_media_core._mixer import Conference, Participant, mix, mix_minus
from rvoip_media_core._plc import Concealer
from rvoip_media_core._sources import (
    AudioSink,
    AudioSource,
    CallbackSource,
    SamplesSource,
    SilenceSource,
    WavSink,
    WavSource,
)
from rvoip_media_core._tones import (
    DTMF_FREQUENCIES,
    DtmfDetector,
    ToneGenerator,
    detect_dtmf,
    detect_tone,
    dtmf_generator,
    goertzel_power,
    tone_level,
)

__version__ = "0.1.0"

__all__ = [
    "BACKEND",
    "DTMF_FREQUENCIES",
    "G711_BPL_APPENDIX_I_PLC",
    "G711_BPL_NO_PLC",
    "G711_IE",
    "KERNEL_ENV",
    "PHASES",
    "SPLIT_ABOVE",
    "AudioSink",
    "AudioSource",
    "CallbackSource",
    "ClockStats",
    "Codec",
    "Concealer",
    "Conference",
    "DtmfDetector",
    "EModelParams",
    "EModelResult",
    "FrameCodec",
    "InsertResult",
    "JitterBuffer",
    "JitterStats",
    "KernelHandles",
    "LossRunTracker",
    "MediaClock",
    "MediaCoreError",
    "MediaEngine",
    "MediaStream",
    "Outgoing",
    "Participant",
    "PlayBatch",
    "PopStatus",
    "QualityEstimate",
    "RtpSessionLike",
    "SamplesSource",
    "SilenceSource",
    "StreamStatistics",
    "ToneGenerator",
    "WavFormatError",
    "WavSink",
    "WavSource",
    "__version__",
    "alaw_decode",
    "alaw_decode_bytes",
    "alaw_encode",
    "alaw_encode_bytes",
    "decode",
    "detect_dtmf",
    "detect_tone",
    "dtmf_generator",
    "emodel",
    "emodel_r_factor",
    "encode",
    "goertzel_power",
    "insert_many",
    "make_handles",
    "mix",
    "mix_minus",
    "mos_from_r",
    "pop_many",
    "quality_from_statistics",
    "quality_metrics",
    "run_media_engine",
    "tone_level",
    "ulaw_decode",
    "ulaw_decode_bytes",
    "ulaw_encode",
    "ulaw_encode_bytes",
]

# Old names, kept for one release (not in __all__): session-core's public API has its own
# QualityMetrics (the seed's) and MediaError, so media-core's were renamed to tell them apart.
QualityMetrics = QualityEstimate
MediaError = MediaCoreError
