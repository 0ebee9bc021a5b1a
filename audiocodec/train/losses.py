"""Training losses that compare spectra: multi-scale log-mel reconstruction (the loss the codec is trained on)
and the L1 of loudness-compressed STFT magnitudes beside it. The discriminators are in ``discriminators.py``.
``evaluation.metrics`` reuses ``mel_filterbank``; the codec itself never imports this."""
from __future__ import annotations

import math

import torch
from torch import nn


def mel_filterbank(n_fft: int, n_mels: int, sr: int = 16000, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular HTK-style mel filters, (n_mels, n_fft // 2 + 1)."""
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


def stft_mag(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """x (B, T) -> magnitude (B, n_fft//2+1, frames)."""
    win = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, hop, window=win, return_complex=True, center=True).abs()


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of L1(log10 mel(x_hat), log10 mel(x)), windows 64 .. 2048 samples (4 .. 128 ms)."""

    def __init__(self, scales=((64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320)), sr: int = 16000):
        super().__init__()
        self.scales = scales
        for n_fft, n_mels in scales:
            self.register_buffer(f"fb{n_fft}", mel_filterbank(n_fft, n_mels, sr), persistent=False)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_hat, x = x_hat.flatten(0, 1), x.flatten(0, 1)
        loss = 0.0
        for n_fft, _ in self.scales:
            fb = getattr(self, f"fb{n_fft}")
            m_hat = fb @ stft_mag(x_hat, n_fft, n_fft // 4)
            m = fb @ stft_mag(x, n_fft, n_fft // 4)
            loss = loss + (m_hat.clamp(min=1e-5).log10() - m.clamp(min=1e-5).log10()).abs().mean()
        return loss / len(self.scales)


class CompressedMagnitudeLoss(nn.Module):
    """Mean over resolutions of L1(|S(x_hat)|^0.3, |S(x)|^0.3) on linear-frequency STFT magnitudes.

    A log loss weighs a quiet valley between harmonics as much as the harmonic itself; a power law close to
    loudness (PESQ's Zwicker exponent is 0.23 on power, about 0.46 on magnitude) weighs the bins by what is
    heard, at full frequency resolution (no mel pooling of the low band's harmonics)."""

    def __init__(self, resolutions=(512, 1024), power: float = 0.3):
        super().__init__()
        self.resolutions, self.power = resolutions, power

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_hat, x = x_hat.flatten(0, 1), x.flatten(0, 1)
        loss = 0.0
        for n in self.resolutions:
            m_hat, m = stft_mag(x_hat, n, n // 4), stft_mag(x, n, n // 4)
            diff = (m_hat + 1e-7) ** self.power - (m + 1e-7) ** self.power
            loss = loss + diff.abs().mean()
        return loss / len(self.resolutions)
