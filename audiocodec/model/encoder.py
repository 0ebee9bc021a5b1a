"""Causal SEANet-style encoder: 16 kHz waveform -> one latent vector per 20 ms frame (50 Hz)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CausalConv1d, ConvNeXtBlock, ResidualUnit


class Encoder(nn.Module):
    """wav (B, 1, T) -> latents (B, latent_dim, T // hop), hop = prod(strides) = 320 samples.

    Strided convolutions halve the work at each stage (16 kHz -> 8 k -> 2 k -> 400 -> 50 Hz) while the
    channel count grows; a few ConvNeXt blocks then mix information at the cheap frame rate."""

    def __init__(self, channels=(16, 32, 64, 128, 256), strides=(2, 4, 5, 8), blocks: int = 2,
                 hidden: int = 512, latent_dim: int = 128):
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

    def _init_weights(self) -> None:
        # He-normal weights and zero biases: with PyTorch's default init the conv biases drown the
        # (quiet) speech signal, the latents barely move over time and the codebooks collapse.
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)) and getattr(m, "groups", 1) == 1:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stages(self.conv_in(wav)))
        return self.proj(self.norm(x.transpose(1, 2))).transpose(1, 2)
