"""The panel of codecs under test: this product's codec (plain and hybrid modes) through its real bitstream,
and ``make_codecs``, which lines it up against the reference codecs.

Layering: ``base.py`` <- ``baselines.py``, ``pca.py`` <- this module (imports go downward only).
"""
from __future__ import annotations

import io
import time

import numpy as np

from ..bitstream.container import read_chunks, read_header
from ..compress import compress, decompress
from ..errors import CodecError
from ..stream import modes
from . import baselines, product
from .base import CodecUnderTest, Coded, fit_length
from .pca import PcaCodec, load_pca

FAMILIES = ("neural", "hybrid", "opus", "codec2", "pca")


class NeuralCodec(CodecUnderTest):
    """The model under test through the real bitstream: ``compress`` -> .acdc bytes -> ``decompress``."""
    family = "neural"
    # Sample-aligned by construction: the encoder is causal and each STFT window of the head ends where its
    # latent frame ends, so decoded sample n stands for input sample n. Estimating it instead fails: the
    # harmonic source draws its own phases, so the waveform cross-correlation that refines the estimate
    # peaks at a 1-2 ms lag that is not there (which cost one experimental model 0.4 PESQ-WB).
    delay = 0

    hybrid = False

    def __init__(self, kbps: float, weights: str | None = None, entropy: bool = True, postfilter: float | None = None,
                 search: int = 0):
        """``postfilter``: the decoder's postfilter exponent (None: the model's own, ``CodecConfig.postfilter``; 1: off);
        ``search``: the encoder's steps of analysis by synthesis (``compress --search``)."""
        super().__init__(kbps)
        product.check_bitrate(kbps, hybrid=self.hybrid)
        self.engine = product.engine(weights)
        self.entropy = entropy
        self.postfilter = postfilter
        self.search = search if modes.mode(kbps, self.hybrid).searchable else 0  # (compress --search's own modes)

    def run(self, wav: np.ndarray) -> Coded:
        t0 = time.perf_counter()
        data = compress(wav, self.nominal_kbps, self.engine, entropy=self.entropy, hybrid=self.hybrid, search=self.search)
        t1 = time.perf_counter()
        decoded = decompress(data, self.engine, self.postfilter)
        t2 = time.perf_counter()
        f = io.BytesIO(data)
        header = read_header(f)
        payload = sum(len(p) + (len(low[1]) if low else 0) for _, p, _, low in read_chunks(f, header))
        return Coded(fit_length(decoded, len(wav)), payload, len(data), t1 - t0, t2 - t1)


class HybridCodec(NeuralCodec):
    """A hybrid mode (``compress --hybrid``): the neural codec at a lower bitrate plus the low band sent as a
    waveform (``stream/lowband.py``), through the real bitstream. Sample-aligned like the neural codec."""
    family = "hybrid"
    hybrid = True


def make_codecs(bitrates=None, against=("opus", "codec2", "pca"), weights: str | None = None,
                opus_kbps=None, codec2_modes=None, warn=print, postfilter: float | None = None,
                search: int = 0) -> list[CodecUnderTest]:
    """The neural codec at each bitrate, then each family of ``against`` that is available here ('hybrid':
    the hybrid modes, ``compress --hybrid``). ``search``: their encoders' steps of analysis by synthesis.
    ``postfilter``: the neural and hybrid decoders' postfilter
    exponent (None: the model's own; 1: off).

    Opus and Codec2 need their command-line tools; when missing they are skipped with a warning."""
    codecs: list[CodecUnderTest] = [NeuralCodec(k, weights, postfilter=postfilter, search=search) for k in (product.plain_bitrates() if bitrates is None else bitrates)]
    for family in against:
        if family == "hybrid":
            codecs += [HybridCodec(k, weights, postfilter=postfilter, search=search) for k in product.hybrid_bitrates()]
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
            raise CodecError(f"unknown codec {family!r} (choose from {', '.join(FAMILIES[1:])})")
    return codecs
