"""Quality metrics on 16 kHz float arrays, a panel of judges: PESQ-WB, ViSQOL (speech mode), STOI, ESTOI,
SI-SDR, log-mel distance.

Every function takes (reference, degraded), trims both to the shorter length, and returns a float.
PESQ and ViSQOL fail on clips where they find no speech (silence, under ~0.25 s); we return NaN there,
and ``mean_ignoring_nan`` skips NaNs when averaging.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from ..constants import SAMPLE_RATE

METRICS = ("pesq_wb", "visqol", "stoi", "estoi", "si_sdr", "mel_distance")
HIGHER_IS_BETTER = {"pesq_wb": True, "visqol": True, "stoi": True, "estoi": True, "si_sdr": True, "mel_distance": False}
LABELS = {"pesq_wb": "PESQ-WB", "visqol": "ViSQOL", "stoi": "STOI", "estoi": "ESTOI", "si_sdr": "SI-SDR (dB)",
          "mel_distance": "log-mel dist"}


def _pair(ref, deg) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64).ravel()
    deg = np.asarray(deg, dtype=np.float64).ravel()
    n = min(len(ref), len(deg))
    return ref[:n], deg[:n]


def pesq_wb(ref, deg, sr: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO, about 1.0 (bad) .. 4.64 (transparent); NaN if no speech found."""
    from pesq import pesq

    ref, deg = _pair(ref, deg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pesq divides by the peak: a warning on all-zero input
            return float(pesq(sr, ref, deg, "wb"))
    except Exception:  # NoUtterancesError, BufferTooShortError, ...
        return math.nan


@functools.lru_cache(maxsize=1)
def _visqol_api():
    from visqol import VisqolApi

    api = VisqolApi()
    # speech mode (16 kHz) with the deep-lattice MOS mapper, the reference C++ ViSQOL's default; asked for
    # explicitly so that a machine without its runtime fails instead of scoring on another scale
    api.create(mode="speech", use_lattice_model=True)
    return api


def visqol(ref, deg, sr: int = SAMPLE_RATE) -> float:
    """ViSQOL v3 speech-mode MOS-LQO (visqol-python, lattice mapper), 1 (bad) .. 5; a clean speech clip scored
    against itself gets about 4 to 4.7, not 5. NaN when it finds no speech to compare (silence, < 80 ms)."""
    ref, deg = _pair(ref, deg)
    if sr != SAMPLE_RATE:
        raise ValueError(f"ViSQOL speech mode takes {SAMPLE_RATE} Hz audio, not {sr} Hz")
    try:
        return float(_visqol_api().measure_from_arrays(ref, deg, sr).moslqo)
    except (ValueError, IndexError, ZeroDivisionError, FloatingPointError):  # no speech, too short
        return math.nan


def _stoi(ref, deg, sr: int, extended: bool) -> float:
    from pystoi import stoi

    ref, deg = _pair(ref, deg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pystoi warns on clips shorter than its 30-frame context
        return float(stoi(ref, deg, sr, extended=extended))


def stoi(ref, deg, sr: int = SAMPLE_RATE) -> float:
    """Short-time objective intelligibility, 0 .. 1 (pystoi)."""
    return _stoi(ref, deg, sr, False)


def estoi(ref, deg, sr: int = SAMPLE_RATE) -> float:
    """Extended STOI (pystoi, ``extended=True``), 0 .. 1; stricter about temporal modulation."""
    return _stoi(ref, deg, sr, True)


def si_sdr(ref, deg) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Project ``deg`` on ``ref``: target = (<deg, ref> / ||ref||^2) ref, noise = deg - target,
    SI-SDR = 10 log10(||target||^2 / ||noise||^2). Capped at 100 dB for identical signals."""
    ref, deg = _pair(ref, deg)
    ref = ref - ref.mean()
    deg = deg - deg.mean()
    energy = float(ref @ ref)
    if energy == 0.0:
        return math.nan
    target = (deg @ ref) / energy * ref
    noise = deg - target
    num, den = float(target @ target), float(noise @ noise)
    if den <= num * 1e-10:
        return 100.0
    if num == 0.0:
        return -100.0
    return float(10.0 * np.log10(num / den))


@functools.lru_cache(maxsize=4)
def _mel_fb(n_fft: int, n_mels: int, sr: int) -> np.ndarray:
    from .mel import mel_filterbank  # the same filters the model is trained with

    return mel_filterbank(n_fft, n_mels, sr).numpy().astype(np.float64)


def log_mel(x, n_fft: int = 1024, hop: int = 256, n_mels: int = 80, sr: int = SAMPLE_RATE) -> np.ndarray:
    """log10 mel magnitude spectrogram (n_mels, frames) with a Hann window, floor 1e-5."""
    x = np.asarray(x, dtype=np.float64).ravel()
    x = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect" if len(x) > n_fft // 2 else "constant")
    n_frames = 1 + max(0, (len(x) - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft + 1)[:-1], axis=1)).T
    return np.log10(np.maximum(_mel_fb(n_fft, n_mels, sr) @ spec, 1e-5))


def mel_distance(ref, deg, sr: int = SAMPLE_RATE) -> float:
    """Mean absolute difference of log10 mel spectrograms (80 mels, 64 ms windows, 16 ms hop); 0 = identical.

    The same quantity (at one scale) as the model's training loss; 1.0 means a factor of 10 per mel bin."""
    ref, deg = _pair(ref, deg)
    return float(np.mean(np.abs(log_mel(ref, sr=sr) - log_mel(deg, sr=sr))))


def estimate_delay(ref, deg, max_ms: float = 100.0, sr: int = SAMPLE_RATE) -> int:
    """How many samples ``deg`` lags ``ref`` (0 .. max_ms): a codec's constant algorithmic delay."""
    return common_delay([(ref, deg)], max_ms, sr)


def common_delay(pairs, max_ms: float = 100.0, sr: int = SAMPLE_RATE) -> int:
    """The one delay (samples, 0 .. max_ms) that best aligns every (reference, degraded) pair.

    Coarse step, phase-blind (works for vocoders and neural decoders too): the lag, in 1 ms steps, that
    minimises the log-mel distance summed over all frames of all pairs. Fine step: the peak of the
    pooled waveform cross-correlation within +-1 ms of it (exact for waveform codecs such as Opus)."""
    hop = sr // 1000
    pairs = [_pair(r, d) for r, d in pairs]
    pairs = [(r, d) for r, d in pairs if len(r) >= 4 * hop]
    if not pairs:
        return 0
    max_lag = min(int(max_ms), max(len(r) for r, _ in pairs) // hop // 2)
    cost = np.zeros(max_lag + 1)
    count = np.zeros(max_lag + 1)
    for r, d in pairs:
        a, b = log_mel(r, n_fft=512, hop=hop, sr=sr), log_mel(d, n_fft=512, hop=hop, sr=sr)
        n = a.shape[1]
        for k in range(min(max_lag, n - 1) + 1):
            diff = np.abs(a[:, :n - k] - b[:, k:])
            cost[k] += diff.sum()
            count[k] += diff.size
    coarse = int(np.argmin(np.where(count > 0, cost / np.maximum(count, 1), np.inf)))
    best, best_c = 0, -np.inf
    for lag in range(max(0, coarse * hop - hop), coarse * hop + hop + 1):
        xy = xx = yy = 0.0
        for r, d in pairs:
            if lag < len(r):
                x, y = r[:len(r) - lag], d[lag:]
                xy, xx, yy = xy + float(x @ y), xx + float(x @ x), yy + float(y @ y)
        c = abs(xy) / (np.sqrt(xx * yy) + 1e-12)
        if c > best_c:
            best, best_c = lag, c
    return best


def align(ref, deg, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """(ref, deg) with ``deg``'s first ``delay`` samples and ``ref``'s last ``delay`` samples dropped."""
    ref, deg = _pair(ref, deg)
    return (ref[:len(ref) - delay], deg[delay:]) if delay > 0 else (ref, deg)


def all_metrics(ref, deg, sr: int = SAMPLE_RATE, which=METRICS) -> dict[str, float]:
    """Every metric in ``which`` for one (reference, degraded) pair."""
    fns = {"pesq_wb": lambda: pesq_wb(ref, deg, sr), "visqol": lambda: visqol(ref, deg, sr),
           "stoi": lambda: stoi(ref, deg, sr), "estoi": lambda: estoi(ref, deg, sr),
           "si_sdr": lambda: si_sdr(ref, deg), "mel_distance": lambda: mel_distance(ref, deg, sr)}
    return {m: fns[m]() for m in which}


def mean_ignoring_nan(values) -> float:
    """Mean of the finite values (NaN when there are none)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan
