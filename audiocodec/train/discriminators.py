"""A light multi-resolution STFT discriminator and its hinge and feature-matching losses (``train.py
--adv-start``). Training only; inference never imports this."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .losses import stft_mag


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
