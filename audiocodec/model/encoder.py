"""Causal SEANet-style encoder: 16 kHz waveform -> one latent vector per 20 ms frame (50 Hz), optionally
plus a spectral branch that reads the frame's log-magnitude spectra directly."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CausalConv1d, ConvNeXtBlock, ResidualUnit, StreamingModule


class Encoder(StreamingModule):
    """wav (B, 1, T) -> latents (B, latent_dim, T // hop), hop = prod(strides) = 320 samples (streaming: T a
    multiple of hop).

    Strided convolutions halve the work at each stage (16 kHz -> 8 k -> 2 k -> 400 -> 50 Hz) while the
    channel count grows; a few ConvNeXt blocks then mix information at the cheap frame rate."""

    def __init__(self, channels=(16, 32, 64, 128, 256), strides=(2, 4, 5, 8), blocks: int = 2,
                 hidden: int = 512, latent_dim: int = 128, spectral: bool = False, n_fft: int = 640, hop: int = 160):
        super().__init__()
        self.conv_in = CausalConv1d(1, channels[0], 7)
        stages = []
        for c_in, c_out, s in zip(channels[:-1], channels[1:], strides):
            stages += [ResidualUnit(c_in, dilation=1), ResidualUnit(c_in, dilation=3), nn.ELU(),
                       CausalConv1d(c_in, c_out, 2 * s, stride=s)]
        self.stages = nn.Sequential(*stages)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(channels[-1], hidden) for _ in range(blocks)])
        self.norm = nn.LayerNorm(channels[-1])
        self.proj = nn.Linear(channels[-1], latent_dim)
        self._init_weights()
        self.spectral = SpectralBranch(latent_dim, n_fft, hop, math.prod(strides) // hop) if spectral else None

    def _init_weights(self) -> None:
        # He-normal weights and zero biases: with PyTorch's default init the conv biases drown the
        # (quiet) speech signal, the latents barely move over time and the codebooks collapse.
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)) and getattr(m, "groups", 1) == 1:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def waveform(self, wav: torch.Tensor) -> torch.Tensor:
        """The SEANet path alone: wav (B, 1, T) -> (B, latent_dim, T // hop)."""
        x = self.blocks(self.stages(self.conv_in(wav)))
        return self.proj(self.norm(x.transpose(1, 2))).transpose(1, 2)

    def parts(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """wav (B, 1, T) -> (the SEANet latent, the spectral branch's or None), each (B, latent_dim, T // hop):
        the quantizer may let the second join later (``ResidualVQ``'s ``late``)."""
        return self.waveform(wav), None if self.spectral is None else self.spectral(wav)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, 1, T) -> the whole latent, the sum of ``parts``."""
        z, late = self.parts(wav)
        return z if late is None else z + late


class SpectralBranch(StreamingModule):
    """wav (B, 1, T) -> (B, latent_dim, T // (k * hop)): the log-magnitude spectra of each latent frame's
    ``k`` STFT windows (the iSTFT head's framing: window ``j`` ends at sample ``hop * (j + 1)``, so it is
    causal), read by a per-frame MLP and added to the SEANet latent.

    Why: a ridge regression from the SEANet latent (128 numbers per 20 ms) predicted the frame's log
    magnitudes worse than a 32-component PCA of those magnitudes does, after 55,000 training steps; the
    waveform convolutions had not learned to pass the spectral detail. This branch hands it over directly.
    Its last layer starts at zero, so adding it to trained weights changes nothing until it learns."""

    MEAN, STD = -4.2, 2.2  # of log(|STFT| + 1e-4) over random crops of the train split

    def __init__(self, latent_dim: int, n_fft: int = 640, hop: int = 160, k: int = 2, hidden: int = 512):
        super().__init__()
        self.n_fft, self.hop, self.k = n_fft, hop, k
        self.history = n_fft - hop  # samples before the chunk that its first window needs
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.fc1 = nn.Conv1d(k * (n_fft // 2 + 1), hidden, 1)
        self.fc2 = nn.Conv1d(hidden, latent_dim, 1)
        nn.init.zeros_(self.fc2.weight), nn.init.zeros_(self.fc2.bias)

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, history + T) samples -> standardised log magnitudes (B, k * bins, T // (k * hop))."""
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        x = (torch.log(spec.abs() + 1e-4) - self.MEAN) / self.STD          # (B, bins, J)
        b, bins, j = x.shape
        x = x[..., : j // self.k * self.k].reshape(b, bins, j // self.k, self.k)
        return x.permute(0, 3, 1, 2).reshape(b, self.k * bins, j // self.k)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, 1, T) -> (B, latent_dim, T // (k * hop)). Its first windows reach ``history`` samples before
        the signal: zeros, or streaming (T a multiple of k * hop) the end of the call before."""
        return self.fc2(F.gelu(self.fc1(self.features(self.with_past(wav[:, 0], self.history)))))
