"""Decoder backbone: quantized latents -> features at the frame rate, all causal.

The waveform itself is made by the iSTFT head (``heads.py``), so no layer here runs at 16 kHz.
``PitchInput`` lets the backbone hear the pitch a stream sends (``pitch.py``), not only the excitation."""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import CausalConv1d, ConvNeXtBlock, StreamingModule
from .pitch import F0_MAX, F0_MIN


class PitchInput(nn.Module):
    """The sent pitch as an input of the decoder backbone: latents (B, latent_dim, T) + a linear map of, per
    20 ms frame, a flag that the stream sends the pitch and, for each of its two 10 ms pitches, a voiced
    flag, the log-pitch (0 at 60 Hz, 1 at 500 Hz) and its sine and cosine at ``sines`` frequencies (k half
    turns over that range, k = 1 .. sines), all 0 where unvoiced. Without it the backbone knows the pitch
    only as far as the codes tell it, so it cannot draw its magnitudes and voicing for the harmonics that
    the excitation puts at the sent pitch. The map starts at zero, so it joins trained weights without
    changing their output, and a stream without a pitch (``sent`` False) adds nothing."""

    def __init__(self, latent_dim: int, sines: int = 3):
        super().__init__()
        self.sines = sines
        self.proj = nn.Linear(1 + 2 * (2 + 2 * sines), latent_dim, bias=False)
        nn.init.zeros_(self.proj.weight)

    def features(self, f0: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
        """f0 (B, 2T) Hz (0 = unvoiced), sent (B,) bool -> (B, T, 1 + 2 * (2 + 2 * sines))."""
        b, j = f0.shape
        voiced = (f0 > 0).float()[..., None]
        pos = (torch.log2(f0.clamp(min=F0_MIN, max=F0_MAX) / F0_MIN) / math.log2(F0_MAX / F0_MIN))[..., None]
        angle = pos * math.pi * torch.arange(1, self.sines + 1, device=f0.device)
        per = voiced * torch.cat([torch.ones_like(pos), pos, torch.sin(angle), torch.cos(angle)], -1)
        flag = torch.ones(b, j // 2, 1, device=f0.device)
        return torch.cat([flag, per.reshape(b, j // 2, -1)], -1) * sent.float().view(b, 1, 1)

    def forward(self, z: torch.Tensor, f0: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
        return z + self.proj(self.features(f0, sent).to(z.dtype)).transpose(1, 2)


class Decoder(StreamingModule):
    """latents (B, latent_dim, T) -> features (B, T, dim); streaming, its convolutions keep their past inputs.

    ``runner``: None (torch), or another backend's runner of ``backbone`` (``onnx_backend.OnnxDecoder``),
    which outside training takes its place and keeps the stream's state in this module's ``stream``."""

    runner = None

    def __init__(self, latent_dim: int = 128, dim: int = 256, hidden: int = 768, blocks: int = 8):
        super().__init__()
        self.embed = CausalConv1d(latent_dim, dim, 3)
        self.norm_in = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim, hidden) for _ in range(blocks)])
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.runner is not None and not self.training:
            return self.runner(z, self.stream)
        return self.backbone(z)

    def backbone(self, z: torch.Tensor) -> torch.Tensor:
        """The layers themselves (torch): z (B, latent_dim, T) -> (B, T, dim)."""
        x = self.norm_in(self.embed(z).transpose(1, 2)).transpose(1, 2)
        return self.norm_out(self.blocks(x).transpose(1, 2))
