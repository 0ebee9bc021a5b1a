"""What every codec under evaluation looks like: ``run(wav) -> Coded``, with real bytes counted.

``neural`` wraps ``compress``/``decompress`` (the .acdc files the CLI writes); ``baselines.py`` has Opus and
Codec2 (external programs) and ``pca.py`` the linear baseline. ``make_codecs`` builds the list the
``evaluate`` command and ``scripts/benchmark.py`` both run.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np

from ..errors import CodecError

SAMPLE_RATE = 16000
FAMILIES = ("neural", "hybrid", "opus", "codec2", "pca")


@dataclass
class Coded:
    """One clip through one codec: the decoded audio (same length as the input) and what it cost."""
    decoded: np.ndarray
    payload_bytes: int   # codec payload only, no container framing (what a packet stream would carry)
    file_bytes: int      # the whole file the codec writes (container headers included)
    encode_s: float
    decode_s: float


class Codec:
    """Base class: ``family`` ('neural', 'opus', ...), ``nominal_kbps``, ``name`` (e.g. 'opus-8'), and
    ``delay``: the samples by which the decoded audio lags the input when the codec knows it by
    construction, or None to have the evaluation estimate it (``metrics.common_delay``)."""

    family = ""
    delay: int | None = None

    def __init__(self, nominal_kbps: float):
        self.nominal_kbps = float(nominal_kbps)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.nominal_kbps:g}"

    def run(self, wav: np.ndarray) -> Coded:
        raise NotImplementedError


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` to ``n`` samples (float32)."""
    y = np.asarray(y, dtype=np.float32).ravel()[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y


class NeuralCodec(Codec):
    """The shipped model through the real bitstream: ``compress`` -> .acdc bytes -> ``decompress``."""
    family = "neural"
    # Sample-aligned by construction: the encoder is causal and each STFT window of the head ends where its
    # latent frame ends, so decoded sample n stands for input sample n. Estimating it instead fails: the
    # harmonic source draws its own phases, so the waveform cross-correlation that refines the estimate
    # peaks at a 1-2 ms lag that is not there (which cost one experimental model 0.4 PESQ-WB).
    delay = 0

    hybrid = False

    def __init__(self, kbps: float, weights: str | None = None, entropy: bool = True):
        super().__init__(kbps)
        from ..compress import hybrid_layers, load_engine, n_q_for

        hybrid_layers(kbps) if self.hybrid else n_q_for(kbps)  # validates the bitrate
        self.engine = load_engine(weights)
        self.entropy = entropy

    def run(self, wav: np.ndarray) -> Coded:
        from ..bitstream.container import read_chunks, read_header
        from ..compress import compress, decompress

        t0 = time.perf_counter()
        data = compress(wav, self.nominal_kbps, self.engine, entropy=self.entropy, hybrid=self.hybrid)
        t1 = time.perf_counter()
        decoded = decompress(data, self.engine)
        t2 = time.perf_counter()
        f = io.BytesIO(data)
        header = read_header(f)
        payload = sum(len(p) + (len(low[1]) if low else 0) for _, p, _, low in read_chunks(f, header))
        return Coded(fit_length(decoded, len(wav)), payload, len(data), t1 - t0, t2 - t1)


class HybridCodec(NeuralCodec):
    """A hybrid mode (``compress --hybrid``): the neural codec at a lower bitrate plus the low band sent as a
    waveform (``lowband.py``), through the real version-2 bitstream. Sample-aligned like the neural codec."""
    family = "hybrid"
    hybrid = True


def parse_list(text: str, what: str, allowed=None, cast=str) -> list:
    """'a,b,c' -> [cast(a), ...]; CodecError naming the bad item."""
    out = []
    for item in (t.strip() for t in str(text).split(",")):
        if not item:
            continue
        try:
            v = cast(item)
        except ValueError:
            raise CodecError(f"{what}: cannot read {item!r}") from None
        if allowed is not None and v not in allowed:
            raise CodecError(f"{what}: {item!r} is not one of {', '.join(str(a) for a in allowed)}")
        out.append(v)
    return out


def make_codecs(bitrates=(1.5, 3.0, 6.0, 12.0), against=("opus", "codec2", "pca"), weights: str | None = None,
                opus_kbps=None, codec2_modes=None, warn=print) -> list[Codec]:
    """The neural codec at each bitrate, then each family of ``against`` that is available here ('hybrid':
    the hybrid modes, ``compress --hybrid``).

    Opus and Codec2 need their command-line tools; when missing they are skipped with a warning."""
    from . import baselines
    from .pca import PcaCodec, load_pca

    from ..lowband import HYBRID_MODES

    codecs: list[Codec] = [NeuralCodec(k, weights) for k in bitrates]
    for family in against:
        if family == "hybrid":
            codecs += [HybridCodec(k, weights) for k in HYBRID_MODES]
        elif family == "opus":
            if baselines.opus_available():
                codecs += [baselines.OpusCodec(k) for k in (opus_kbps or baselines.OPUS_KBPS)]
            else:
                warn("note: opusenc/opusdec not found; skipping Opus (apt-get install opus-tools)")
        elif family == "codec2":
            if baselines.codec2_available():
                codecs += [baselines.Codec2Codec(m) for m in (codec2_modes or baselines.CODEC2_MODES)]
            else:
                warn("note: c2enc/c2dec not found; skipping Codec2 (apt-get install codec2)")
        elif family == "pca":
            model = load_pca()
            codecs += [PcaCodec(k, model) for k in bitrates]
        else:
            raise CodecError(f"unknown codec {family!r} (choose from hybrid, opus, codec2, pca)")
    return codecs
