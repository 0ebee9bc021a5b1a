"""The waveform layer: the band below ``cutoff_hz`` coded as it is, on top of the neural codec's output.

The autoencoder rebuilds the spectral envelope well but not the exact harmonics of the voice below about
1 kHz, and no number of codebooks fixes that (docs/training-log.md, "The gap, measured"); PESQ and the ear
both weigh that band most. This layer sends it the classical way, as Opus's hybrid mode and AMR-WB do for
their low bands: an MDCT (20 ms hop, 40 ms sine window, orthonormal, so coefficients are in the signal's
own units), of which only the first ``cutoff_hz / 25`` coefficients are kept. They are split into bands of
``BAND`` coefficients (200 Hz); each band gets a scale (its RMS, in 3 dB steps) and is quantized with a
uniform step set so that the quantization noise sits ``snr_db`` under the band's level -- the noise follows
the spectrum, as a perceptual coder's would. Scales and coefficients are range coded (constriction) with
fixed Laplace models, so nothing but the cutoff and SNR travel beside them (the hybrid modes: ``modes.py``).
A band more than 84 dB under full scale is sent as silent (its scale alone).

The receiver replaces the same MDCT coefficients of the neural output with these, so the two layers
meet at the cutoff without a crossover filter: ``y + imdct(sent - mdct(y))`` on those coefficients. The
MDCT frame ``j`` spans samples ``[320 (j - 1), 320 (j + 1))``, so the layer adds 20 ms of look-ahead to
the decoder (a sample is final when the frame after its own has arrived).

What a receiver decodes is bounded by full scale, whatever the bytes: band scales above what a full-scale
signal's band reaches (``S_FULL``) are lowered to it, coefficients are held within ``COEF_MAX``, and a
replaced sample never goes beyond full scale (or beyond the neural audio's own sample, if that is louder).
Honest streams of audio within full scale never reach these bounds, so they decode as before."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..bitstream.container import FormatError
from ..constants import FRAME

HOP = FRAME                   # 20 ms: one MDCT frame per codec frame
BAND = 8                      # coefficients per band: 8 x 25 Hz = 200 Hz
S_MIN, S_MAX = -28, 10        # band scale index s: RMS = 2 ** (s / 2); S_MIN means silent (2 ** -14, -84 dB)
Q_MAX = 1023                  # largest quantized coefficient (clipped beyond)
SCALE_SPREAD = 2.0            # Laplace spread of a scale around the same band's scale in the previous frame
# A full-scale frame (|x| <= 1) has windowed energy <= HOP (the sine window's squares sum to HOP), so a band's
# RMS is at most sqrt(HOP / BAND) = 6.3 (s = 5.3) and one coefficient at most sqrt(HOP) = 17.9.
S_FULL = 6                    # decoded scales are lowered to this (one step above what full scale reaches)
COEF_MAX = 2 * math.sqrt(HOP)  # decoded coefficients are held within +-this (room for quantization error)
FULL_SCALE = 1.0              # a replaced sample stays within +-max(this, |the neural sample|)


def _basis(coefs: int) -> np.ndarray:
    """(2 HOP, coefs) orthonormal MDCT basis with the sine window folded in."""
    n = np.arange(2 * HOP)[:, None] + 0.5 + HOP / 2
    k = np.arange(coefs)[None, :] + 0.5
    window = np.sin(np.pi * (np.arange(2 * HOP) + 0.5) / (2 * HOP))[:, None]
    return window * np.sqrt(2.0 / HOP) * np.cos(np.pi / HOP * n * k)


def frames_for(length: int) -> int:
    """MDCT frames that cover ``length`` samples twice (each sample lies in two overlapping windows)."""
    return -(-length // HOP) + 1


class LowBand:
    """Codes the band below ``cutoff_hz`` (a multiple of 200 Hz) at about ``snr_db`` signal-to-noise ratio."""

    def __init__(self, cutoff_hz: int = 1000, snr_db: float = 12.0):
        if cutoff_hz % 200 or not 200 <= cutoff_hz <= 8000:
            raise ValueError(f"cutoff_hz must be a multiple of 200 in 200..8000, not {cutoff_hz}")
        self.cutoff_hz, self.snr_db = cutoff_hz, float(snr_db)
        self.coefs = cutoff_hz // 25
        self.bands = self.coefs // BAND
        self.basis = _basis(self.coefs)
        self.spread = 10 ** (snr_db / 20) / math.sqrt(12)  # RMS of a band's coefficients in steps
        self._coef_b = np.full(self.coefs, self.spread / math.sqrt(2))  # Laplace b of that standard deviation
        import constriction

        self._scale_model = constriction.stream.model.QuantizedLaplace(S_MIN, S_MAX)
        self._coef_model = constriction.stream.model.QuantizedLaplace(-Q_MAX, Q_MAX)

    # -- transform ---------------------------------------------------------------------------------
    def mdct(self, x: np.ndarray) -> np.ndarray:
        """signal (T,) -> its first ``coefs`` MDCT coefficients per frame (frames_for(T), coefs)."""
        n = frames_for(len(x))
        padded = np.zeros((n + 1) * HOP)
        padded[HOP:HOP + len(x)] = x
        segments = np.lib.stride_tricks.sliding_window_view(padded, 2 * HOP)[::HOP][:n]
        return segments @ self.basis

    def imdct(self, coefs: np.ndarray, length: int) -> np.ndarray:
        """Inverse of ``mdct`` for the kept coefficients: (frames, coefs) -> signal (length,)."""
        segments = coefs @ self.basis.T
        out = np.zeros((len(coefs) + 1) * HOP)
        for j, seg in enumerate(segments):
            out[j * HOP:(j + 2) * HOP] += seg
        return out[HOP:HOP + length]

    def replace(self, y: np.ndarray, coefs: np.ndarray) -> np.ndarray:
        """The neural output ``y`` with its low band replaced by the sent ``coefs`` (frames_for(len(y)), coefs)."""
        return (y + self.imdct(coefs - self.mdct(y), len(y))).astype(np.float32)

    # -- quantization ------------------------------------------------------------------------------
    def scales(self, coefs: np.ndarray) -> np.ndarray:
        """(frames, coefs) -> scale index per band (frames, bands), S_MIN for silent bands."""
        rms = np.sqrt(np.mean(coefs.reshape(len(coefs), self.bands, BAND) ** 2, axis=2))
        s = np.round(2 * np.log2(np.maximum(rms, 1e-30)))
        return np.clip(s, S_MIN, S_MAX).astype(np.int32)

    def steps(self, scales: np.ndarray) -> np.ndarray:
        """Quantizer step per band (frames, bands): the band's RMS over ``spread``."""
        return 2.0 ** (scales / 2) / self.spread

    def quantize(self, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frames, coefs) -> (scales (frames, bands), quantized coefficients (frames, coefs))."""
        s = self.scales(coefs)
        step = np.repeat(self.steps(s), BAND, axis=1)
        q = np.clip(np.round(coefs / step), -Q_MAX, Q_MAX).astype(np.int32)
        q[np.repeat(s == S_MIN, BAND, axis=1)] = 0
        return s, q

    def dequantize(self, scales: np.ndarray, q: np.ndarray) -> np.ndarray:
        return q * np.repeat(self.steps(scales), BAND, axis=1) * np.repeat(scales > S_MIN, BAND, axis=1)

    # -- range coding ------------------------------------------------------------------------------
    def encode_frames(self, coefs: np.ndarray) -> bytes:
        """(frames, coefs) MDCT coefficients -> range-coded bytes (a whole number of 32-bit words). Each call
        is self-contained (the first frame's scales are coded against silence), so a chunk decodes alone."""
        import constriction

        scales, q = self.quantize(coefs)
        enc = constriction.stream.queue.RangeEncoder()
        prev = np.full(self.bands, S_MIN, np.int32)
        for s, row in zip(scales, q):
            enc.encode(s, self._scale_model, prev.astype(np.float64), np.full(self.bands, SCALE_SPREAD))
            live = np.repeat(s > S_MIN, BAND)
            if live.any():
                enc.encode(row[live], self._coef_model, np.zeros(live.sum()), self._coef_b[live])
            prev = s
        return enc.get_compressed().astype("<u4").tobytes()

    def decode_frames(self, data: bytes, frames: int) -> np.ndarray:
        """Inverse of ``encode_frames``: the dequantized coefficients (frames, coefs). Any bytes decode to
        coefficients within range (hostile ones to noise no louder than full scale, never to a crash or a large
        allocation)."""
        import constriction

        if len(data) % 4:
            raise FormatError("low-band payload is not a whole number of words")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        scales = np.zeros((frames, self.bands), np.int32)
        q = np.zeros((frames, self.coefs), np.int32)
        prev = np.full(self.bands, S_MIN, np.int32)
        try:
            for j in range(frames):
                scales[j] = prev = dec.decode(self._scale_model, prev.astype(np.float64), np.full(self.bands, SCALE_SPREAD))
                live = np.repeat(prev > S_MIN, BAND)
                if live.any():
                    q[j, live] = dec.decode(self._coef_model, np.zeros(live.sum()), self._coef_b[live])
        except Exception as exc:  # constriction raises on an inconsistent stream
            raise FormatError(f"low-band payload does not decode ({exc})") from None
        return np.clip(self.dequantize(np.minimum(scales, S_FULL), q), -COEF_MAX, COEF_MAX)

    def encode(self, x: np.ndarray) -> bytes:
        """A whole signal (T,) -> the bytes of its low band, one chunk of frames_for(T) frames."""
        return self.encode_frames(self.mdct(np.asarray(x, dtype=np.float64)))

    def sent(self, x: np.ndarray) -> np.ndarray:
        """What a receiver gets of signal ``x``'s low band: its frames encoded and decoded again."""
        return self.decode_frames(self.encode(x), frames_for(len(x)))


@functools.lru_cache(maxsize=8)
def layer(cutoff_hz: int, snr_db: float) -> LowBand:
    """A shared ``LowBand`` (its basis and models are built once per setting)."""
    return LowBand(cutoff_hz, snr_db)


class LowBandEncoder:
    """Streaming ``LowBand.mdct``: push audio of any length, get each MDCT frame as soon as its window is
    complete (frame ``j`` needs samples up to ``320 (j + 1)``); ``flush`` pads the end with silence."""

    def __init__(self, layer: LowBand):
        self.layer = layer
        self.buf = np.zeros(HOP)   # the window of frame 0 starts HOP before the signal
        self.length = self.returned = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        """audio (T,) -> the frames it completes (n, coefs)."""
        self.length += len(x)
        self.buf = np.concatenate([self.buf, np.asarray(x, dtype=np.float64)])
        n = max(0, len(self.buf) // HOP - 1)
        if n == 0:
            return np.zeros((0, self.layer.coefs))
        segments = np.lib.stride_tricks.sliding_window_view(self.buf[:(n + 1) * HOP], 2 * HOP)[::HOP][:n]
        self.buf = self.buf[n * HOP:]
        self.returned += n
        return segments @ self.layer.basis

    def flush(self) -> np.ndarray:
        """The frames still missing of ``frames_for(length)``."""
        missing = frames_for(self.length) - self.returned
        out = self.push(np.zeros(missing * HOP))[:missing]
        return out


class LowBandDecoder:
    """Streaming ``LowBand.replace``: push the neural decoder's audio and the sent frames as they come; get
    back the audio with its low band replaced, as far as it is final (up to the start of the latest frame's
    second half), so one frame (20 ms) later than the audio came. ``flush`` returns the rest; the caller
    trims to the original length. A frame of NaN (one lost in transit) leaves the neural audio's own low
    band in place. A replaced sample is kept within full scale (or the neural sample, if that is louder)."""

    def __init__(self, layer: LowBand):
        self.layer = layer
        self.y = np.zeros(HOP)        # neural audio from the start of the next frame's window
        self.tail = np.zeros(HOP)     # correction already due on the first HOP samples of self.y
        self.frames = np.zeros((0, layer.coefs))
        self.started = False
        self.received = 0             # neural samples pushed so far

    def room(self, length: int) -> int:
        """How many more neural samples fit in a signal of ``length`` (the rest is cut, as ``replace`` has it)."""
        return max(0, length - self.received)

    def push(self, y: np.ndarray, frames: np.ndarray) -> np.ndarray:
        self.received += len(y)
        self.y = np.concatenate([self.y, np.asarray(y, dtype=np.float64)])
        self.frames = np.concatenate([self.frames, frames])
        out = []
        while len(self.frames) and len(self.y) >= 2 * HOP:
            seg = self.y[:2 * HOP]
            if np.isnan(self.frames[0]).any():
                corr = np.zeros(2 * HOP)
            else:
                corr = (self.frames[0] - seg @ self.layer.basis) @ self.layer.basis.T
            y = seg[:HOP]
            out.append(np.clip(y + self.tail + corr[:HOP], np.minimum(y, -FULL_SCALE), np.maximum(y, FULL_SCALE)))
            self.tail = corr[HOP:]
            self.y, self.frames = self.y[HOP:], self.frames[1:]
        if out and not self.started:  # the first frame's first half lies before the signal
            out, self.started = out[1:], True
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def flush(self, y: np.ndarray | None = None, frames: np.ndarray | None = None) -> np.ndarray:
        """Any last neural audio and frames; the audio is then padded with silence to cover every frame."""
        out = self.push(np.zeros(0) if y is None else y, np.zeros((0, self.layer.coefs)) if frames is None else frames)
        need = (len(self.frames) + 1) * HOP - len(self.y)
        return np.concatenate([out, self.push(np.zeros(max(0, need)), np.zeros((0, self.layer.coefs)))])
