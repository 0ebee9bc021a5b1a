"""The discriminators of adversarial training (``train.py --adv-start``), the anchors' pair, and their hinge
and feature-matching losses. Training only; inference never imports this.

- ``PeriodDiscriminator`` (HiFi-GAN's multi-period discriminator, also in DAC): the waveform folded into rows
  of ``period`` samples, so 2-D convolutions down the rows compare samples one period apart; periods 2, 3, 5,
  7 and 11 see the fine structure of voiced speech that a spectrum's magnitude smooths over.
- ``STFTDiscriminator`` (EnCodec's multi-scale STFT discriminator): the complex spectrum, real and imaginary
  parts as two channels, 2-D convolutions over time and frequency, so phase is judged as well as magnitude.

``width`` sets the channels (the period layers grow to 8 × width): width 16 is 0.76 M parameters in all, small
enough to come back from a lent GPU machine with its optimizer's state (HiFi-GAN's own period discriminators,
32 to 1024 channels, have 41 M); width 8 (0.19 M) is the size for CPU, where the STFT scales cost the most
(each sees about two positions per sample: 2 s of a 2-core step at batch 16 against 0.2 s for the periods).
"""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

GAIN = 30.0  # speech at its level (an RMS of 0.01 to 0.1) brought to about unit scale before the first layer


def _layer(conv: nn.Conv2d, slope: float) -> nn.Module:
    """A weight-normalised convolution initialised to keep its input's scale through a leaky ReLU of this
    slope (He), bias zero: with PyTorch's defaults each layer shrank speech 2.5 times and the biases decided
    the output, so the hinge loss saw the same output for every input and no gradient reached the generator."""
    nn.init.kaiming_normal_(conv.weight, a=slope)
    nn.init.zeros_(conv.bias)
    return weight_norm(conv)


def _judge(convs: nn.ModuleList, out: nn.Module, m: torch.Tensor, slope: float):
    """The layers, each followed by a leaky ReLU -> (logits, every layer's feature map)."""
    feats = []
    for conv in convs:
        m = F.leaky_relu(conv(m), slope)
        feats.append(m)
    return out(m), feats


class PeriodDiscriminator(nn.Module):
    """wav (B, T) -> (logits (B, 1, rows, period), feature maps)."""

    def __init__(self, period: int, width: int = 16):
        super().__init__()
        self.period = period
        chans = [1, width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.convs = nn.ModuleList(
            _layer(nn.Conv2d(a, b, (5, 1), (3, 1) if i < 4 else 1, padding=(2, 0)), 0.1)
            for i, (a, b) in enumerate(pairwise(chans)))
        self.out = _layer(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)), 1.0)

    def forward(self, x: torch.Tensor):
        pad = -x.shape[-1] % self.period
        x = F.pad(x, (0, pad), mode="reflect")
        return _judge(self.convs, self.out, GAIN * x.view(x.shape[0], 1, -1, self.period), 0.1)


class STFTDiscriminator(nn.Module):
    """wav (B, T) -> (logits (B, 1, frames, bins'), feature maps); window ``n_fft``, hop a quarter of it."""

    def __init__(self, n_fft: int, width: int = 16):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [nn.Conv2d(2, width, (3, 9), padding=(1, 4))]
        layers += [nn.Conv2d(width, width, (3, 9), (1, 2), dilation=(d, 1), padding=(d, 4)) for d in (1, 2, 4)]
        layers += [nn.Conv2d(width, width, 3, padding=1)]
        self.convs = nn.ModuleList(_layer(c, 0.2) for c in layers)
        self.out = _layer(nn.Conv2d(width, 1, 3, padding=1), 1.0)

    def forward(self, x: torch.Tensor):
        s = torch.stft(GAIN * x.float(), self.n_fft, self.n_fft // 4, window=self.window, normalized=True, return_complex=True)
        return _judge(self.convs, self.out, torch.stack([s.real, s.imag], 1).transpose(2, 3), 0.2)  # (B, 2, frames, bins)


class Discriminators(nn.Module):
    """The multi-period and the multi-scale STFT discriminators together: wav (B, 1, T) -> one (logits, feature
    maps) per sub-discriminator."""

    def __init__(self, width: int = 16, periods=(2, 3, 5, 7, 11), n_ffts=(512, 1024, 2048)):
        super().__init__()
        self.width = width
        self.discs = nn.ModuleList([*(PeriodDiscriminator(p, width) for p in periods),
                                    *(STFTDiscriminator(n, width) for n in n_ffts)])

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
