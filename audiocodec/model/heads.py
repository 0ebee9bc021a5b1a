"""iSTFT waveform head (after Vocos): features at 50 Hz -> magnitude and phase -> overlap-add -> 16 kHz.

Each 20 ms latent frame predicts ``frames_per_latent`` STFT frames (hop 160 = 10 ms, window 640 = 40 ms).
The window of STFT frame ``j`` covers samples ``[hop*(j+1) - n_fft, hop*(j+1))``: it ends where its latent
frame ends, so the head is causal. A sample is final once every window over it has arrived, which is
``n_fft - hop`` = 480 samples (30 ms) after the end of the latent frame that covers it.

Phase has two parts. An *instantaneous frequency*: per bin, a deviation from the bin's centre frequency,
integrated (summed) over frames -- a convolutional network sees no absolute time, so it cannot output the
ever-advancing phase of a steady tone directly, but a steady tone is just a constant instantaneous
frequency (bins start at phase ``pi * k``, the alternating pattern a windowed sinusoid has in neighbouring
bins). Plus a per-frame phase *offset* as in Vocos, which draws noise and onsets that a smooth integrated
phase cannot.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ISTFTHead(nn.Module):
    """features (B, T, dim) -> waveform (B, T * frames_per_latent * hop).

    Each latent frame's features are first expanded into ``frames_per_latent`` hidden vectors (one per STFT
    frame, GELU), then read out linearly as log-magnitude and phase advance: a plain linear read-out of all
    frames from ``dim`` features is too low-rank to draw the harmonic fine structure of voiced speech."""

    def __init__(self, dim: int, n_fft: int = 640, hop: int = 160, frames_per_latent: int = 2, hidden: int = 384):
        super().__init__()
        self.n_fft, self.hop, self.k, self.hidden = n_fft, hop, frames_per_latent, hidden
        self.bins = n_fft // 2 + 1
        self.up = nn.Linear(dim, frames_per_latent * hidden)
        self.out = nn.Linear(hidden, 3 * self.bins)  # log-magnitude, phase advance, phase offset
        with torch.no_grad():  # start as steady tones at the bin centres: zero deviation and offset
            self.out.weight[self.bins:].zero_(), self.out.bias[self.bins:].zero_()
        bins = torch.arange(self.bins, dtype=torch.float64)
        self.register_buffer("centre", 2 * math.pi * bins * hop / n_fft, persistent=False)  # phase advance per frame
        self.register_buffer("phase0", math.pi * bins, persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True) * (hop * 2 / n_fft), persistent=False)

    def frames(self, x: torch.Tensor, phase: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, dim) -> (windowed frames (B, T*k, n_fft), phase after the last frame (B, bins) float64).

        ``phase`` continues the running phase of an earlier call (streaming); None starts a new signal."""
        b, t, _ = x.shape
        h = F.gelu(self.up(x)).view(b, t * self.k, self.hidden)
        y = self.out(h).view(b, t * self.k, 3, self.bins)
        mag = torch.exp(y[:, :, 0]).clamp(max=100.0)
        advance = (math.pi * torch.tanh(y[:, :, 1])).double() + self.centre
        start = self.phase0.expand(b, -1) if phase is None else phase
        # phase of frame j = start + advances of frames 0..j-1 (cumulative sum, wrapped to [0, 2 pi))
        total = torch.remainder(start[:, None] + torch.cumsum(advance, 1) - advance, 2 * math.pi)
        last = torch.remainder(total[:, -1] + advance[:, -1], 2 * math.pi)
        spec = torch.polar(mag, total.float() + y[:, :, 2])
        return torch.fft.irfft(spec, n=self.n_fft) * self.window, last

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, J, n_fft) -> (B, J * hop): sum of shifted frames, the first n_fft - hop samples cut."""
        b, j, n = frames.shape
        out = F.fold(frames.transpose(1, 2), output_size=(1, (j - 1) * self.hop + n),
                     kernel_size=(1, n), stride=(1, self.hop))
        return out.view(b, -1)[:, n - self.hop:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.overlap_add(self.frames(x)[0])
