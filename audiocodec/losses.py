"""Training losses: multi-scale log-mel reconstruction and a light multi-resolution STFT discriminator.

Only ``scripts/train.py`` and the tests import this; inference never does."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


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


class ComplexSTFTLoss(nn.Module):
    """Mean over resolutions of |S(x_hat) - S(x)| / mean |S(x)| on complex spectra.

    Unlike the mel loss it also sees the phase, which teaches the iSTFT head coherent harmonics early on
    (without it the decoder keeps the spectral envelope but smears pitch into noise)."""

    def __init__(self, resolutions=(256, 640, 1024)):
        super().__init__()
        self.resolutions = resolutions

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_hat, x = x_hat.flatten(0, 1), x.flatten(0, 1)
        loss = 0.0
        for n in self.resolutions:
            win = torch.hann_window(n, device=x.device)
            s_hat = torch.stft(x_hat, n, n // 4, window=win, return_complex=True)
            s = torch.stft(x, n, n // 4, window=win, return_complex=True)
            loss = loss + (s_hat - s).abs().mean() / (s.abs().mean() + 1e-5)
        return loss / len(self.resolutions)


class SpecDiscriminator(nn.Module):
    """Judges one STFT resolution's log magnitude, frequency bins as channels, 1-D convs over time.

    The first layer sees every bin of a frame at once, so it can learn comb-like filters that tell
    harmonic speech from noise-excited envelopes; all of it costs a few MFLOPs per second of audio.
    wav (B, T) -> (logits (B, 1, frames), feature maps)."""

    def __init__(self, n_fft: int, channels: int = 64):
        super().__init__()
        self.n_fft = n_fft
        c = channels
        self.convs = nn.ModuleList([
            nn.Conv1d(n_fft // 2 + 1, c, 3, padding=1),
            nn.Conv1d(c, c, 3, padding=2, dilation=2),
            nn.Conv1d(c, c, 3, padding=4, dilation=4),
            nn.Conv1d(c, c, 3, padding=1),
        ])
        self.out = nn.Conv1d(c, 1, 3, padding=1)

    def forward(self, x: torch.Tensor):
        m = torch.log(stft_mag(x, self.n_fft, self.n_fft // 2) + 1e-5)
        feats = []
        for conv in self.convs:
            m = F.leaky_relu(conv(m), 0.1)
            feats.append(m)
        return self.out(m), feats


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, resolutions=(512, 1024, 2048)):
        super().__init__()
        self.discs = nn.ModuleList(SpecDiscriminator(n) for n in resolutions)

    def forward(self, x: torch.Tensor):
        x = x.flatten(0, 1)
        return [d(x) for d in self.discs]


def discriminator_loss(real, fake) -> torch.Tensor:
    """Hinge loss over all sub-discriminators."""
    return sum(F.relu(1 - r[0]).mean() + F.relu(1 + f[0]).mean() for r, f in zip(real, fake)) / len(real)


def generator_losses(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial hinge loss, feature-matching L1 normalised by the real features' scale)."""
    adv = sum(F.relu(1 - f[0]).mean() for f in fake) / len(fake)
    fm, n = 0.0, 0
    for r, f in zip(real, fake):
        for fr, ff in zip(r[1], f[1]):
            fm = fm + (fr.detach() - ff).abs().mean() / (fr.detach().abs().mean() + 1e-5)
            n += 1
    return adv, fm / n
