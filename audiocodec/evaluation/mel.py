"""Mel filters: the triangular filterbank behind the log-mel distance (``metrics.log_mel``) and the
model's mel training losses, so both measure the same spectrum."""
from __future__ import annotations

import math

import torch


def mel_filterbank(n_fft: int, n_mels: int, sr: int = 16000, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular HTK-style mel filters, (n_mels, n_fft // 2 + 1) float32."""
    fmax = fmax or sr / 2
    mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)
    pts = torch.linspace(mel(fmin), mel(fmax), n_mels + 2)
    hz = 700.0 * (10 ** (pts / 2595.0) - 1.0)
    freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs - lo) / (mid - lo).clamp(min=1e-5)
    down = (hi - freqs) / (hi - mid).clamp(min=1e-5)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    # keep every filter non-empty at low resolutions: fall back to the nearest bin
    empty = fb.sum(1) == 0
    if empty.any():
        nearest = (freqs[None] - mid[empty]).abs().argmin(1)
        fb[empty.nonzero()[:, 0], nearest] = 1.0
    return fb
