"""Decoder backbone: quantized latents -> features at the frame rate, all causal.

The waveform itself is made by the iSTFT head (``heads.py``), so no layer here runs at 16 kHz."""
from __future__ import annotations

import torch
from torch import nn

from .layers import CausalConv1d, ConvNeXtBlock


class Decoder(nn.Module):
    """latents (B, latent_dim, T) -> features (B, T, dim)."""

    def __init__(self, latent_dim: int = 128, dim: int = 256, hidden: int = 768, blocks: int = 8):
        super().__init__()
        self.embed = CausalConv1d(latent_dim, dim, 3)
        self.norm_in = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, hidden) for _ in range(blocks)])
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(self.embed(z).transpose(1, 2)).transpose(1, 2)
        return self.norm_out(self.blocks(x).transpose(1, 2))
