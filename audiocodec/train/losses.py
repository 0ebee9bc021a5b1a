"""Training losses that compare spectra: multi-scale log-mel reconstruction (the loss the codec is trained on)
and the L1 of loudness-compressed STFT magnitudes beside it. The discriminators are in ``discriminators.py``.
The mel filters are ``evaluation.mel``'s, so the log-mel distance measures the same spectrum."""
from __future__ import annotations

import torch
from torch import nn

from ..evaluation.mel import mel_filterbank


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
