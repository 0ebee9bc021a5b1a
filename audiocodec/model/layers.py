"""Causal building blocks shared by the encoder and the decoder.

Every layer here sees only the past: a causal conv pads ``(kernel - 1) * dilation - (stride - 1)``
zeros on the left, so output frame ``t`` depends on inputs up to ``(t + 1) * stride - 1``.
That is what lets ``streaming.py`` run the same weights one 20 ms frame at a time.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CausalConv1d(nn.Conv1d):
    """Conv1d with left padding only. Input (B, C_in, T) -> output (B, C_out, T // stride)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride, dilation=dilation, groups=groups)
        self.left_pad = (kernel - 1) * dilation - (stride - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))


class ResidualUnit(nn.Module):
    """SEANet residual unit: ELU -> dilated causal conv (C -> C/2) -> ELU -> 1x1 conv (C/2 -> C), plus skip."""

    def __init__(self, channels: int, dilation: int = 1, kernel: int = 3):
        super().__init__()
        hidden = channels // 2
        self.conv1 = CausalConv1d(channels, hidden, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class ConvNeXtBlock(nn.Module):
    """Causal ConvNeXt block at the frame rate (as in Vocos, but with a causal depthwise conv).

    Input and output (B, C, T)."""

    def __init__(self, dim: int, hidden: int, kernel: int = 7):
        super().__init__()
        self.dwconv = CausalConv1d(dim, dim, kernel, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.fc2(F.gelu(self.fc1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)
