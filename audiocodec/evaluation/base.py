"""What every codec under evaluation looks like: ``run(wav) -> Coded``, with real bytes counted.

The bottom of the evaluation's codec layer: ``codecs.py`` (this product's codec), ``baselines.py`` (Opus,
Codec2) and ``pca.py`` (the linear baseline) subclass ``CodecUnderTest``; nothing here imports them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Coded:
    """One clip through one codec: the decoded audio (same length as the input) and what it cost."""
    decoded: np.ndarray
    payload_bytes: int   # codec payload only, no container framing (what a packet stream would carry)
    file_bytes: int      # the whole file the codec writes (container headers included)
    encode_s: float
    decode_s: float


class CodecUnderTest:
    """A codec as the evaluation runs it: ``family`` ('neural', 'opus', ...), ``nominal_kbps``, ``name``
    (e.g. 'opus-8'), and ``delay``: the samples by which the decoded audio lags the input when the codec
    knows it by construction, or None to have the evaluation estimate it (``metrics.common_delay``).

    Subclasses implement ``run(wav (T,) float32 16 kHz) -> Coded``."""

    family = ""
    delay: int | None = None

    def __init__(self, nominal_kbps: float):
        self.nominal_kbps = float(nominal_kbps)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.nominal_kbps:g}"

    def run(self, wav: np.ndarray) -> Coded:
        raise NotImplementedError(f"{type(self).__name__}.run")


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` to ``n`` samples (float32, (n,))."""
    y = np.asarray(y, dtype=np.float32).ravel()[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y
