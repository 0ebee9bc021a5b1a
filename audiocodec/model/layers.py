"""Causal building blocks shared by the encoder and the decoder, and the streaming state they keep.

Every layer here sees only the past: a causal conv pads ``(kernel - 1) * dilation - (stride - 1)``
zeros on the left, so output frame ``t`` depends on inputs up to ``(t + 1) * stride - 1``.
That is what lets the same weights run one 20 ms frame at a time (``streaming.py``).

Streaming (after Moshi's ``with model.streaming():``): a ``StreamingModule`` runs a whole signal per call
outside ``streaming()``, and inside it each call continues the one before, the layer keeping what it needs of
the past in its own ``stream`` dict (a causal conv: its last ``kernel - stride`` inputs). One ``forward``
serves both. ``stream_copy`` gives a stream a private copy of a model, so that the model itself never streams.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F


class StreamingModule(nn.Module):
    """A module that can run on a signal chunk by chunk. ``stream`` is None outside ``streaming()`` (each
    call a whole signal); inside, a dict of this module's own state, empty at the start of the signal.
    ``streaming()`` covers the module and every ``StreamingModule`` inside it."""

    stream: dict | None = None

    def _streaming_layers(self) -> list[StreamingModule]:
        return [m for m in self.modules() if isinstance(m, StreamingModule)]

    def start_streaming(self) -> None:
        """From now on each call continues the one before (a new signal starts here)."""
        layers = self._streaming_layers()
        if any(m.stream is not None for m in layers):
            raise RuntimeError(f"{type(self).__name__} is already streaming")
        for m in layers:
            m.stream = {}

    def stop_streaming(self) -> None:
        """Back to whole signals; the stream's state is dropped."""
        for m in self._streaming_layers():
            m.stream = None

    @contextlib.contextmanager
    def streaming(self) -> Iterator[StreamingModule]:
        """``with module.streaming():`` the calls inside continue each other; leaving it (also through an
        exception) drops the state."""
        self.start_streaming()
        try:
            yield self
        finally:
            self.stop_streaming()

    def with_past(self, x: torch.Tensor, keep: int) -> torch.Tensor:
        """x (..., T) -> (..., keep + T): the last ``keep`` inputs of the call before (zeros at the start of a
        signal, and always outside streaming), then x; a streaming module remembers the last ``keep`` of it."""
        past = None if self.stream is None else self.stream.get("past")
        if past is None:  # (torch.cat of zeros: on CPU twice as fast as F.pad)
            past = x.new_zeros(*x.shape[:-1], keep)
        joined = torch.cat([past, x], -1)
        if self.stream is not None:
            self.stream["past"] = joined[..., joined.shape[-1] - keep:]
        return joined


def stream_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for one stream, streaming from the start: every module on a path to a
    ``StreamingModule`` is a new object (so the copy's stream state is its own), every other module and all
    parameters and buffers are the model's own. Streams on copies leave the model as it was, so offline calls
    and other streams on it run beside them (also in other threads). The copied modules share the model's
    tables of parameters, buffers and hooks: a copy is for running, not for changing the model. For the
    shipped model it makes 69 module objects in about 0.3 ms (``copy.deepcopy`` with the tensors in its memo
    copies all 221 with tables of their own in ~15 ms, which a stream started per file would notice)."""
    new = _copy_stateful(model)
    for m in new.modules():
        if isinstance(m, StreamingModule):
            m.stream = {}
    return new


def _copy_stateful(module: nn.Module) -> nn.Module:
    """``module`` itself if nothing in it streams, else a new object over the same tensors (``stream_copy``)."""
    children = {name: None if m is None else _copy_stateful(m) for name, m in module._modules.items()}
    if not isinstance(module, StreamingModule) and all(children[n] is m for n, m in module._modules.items()):
        return module  # holds no stream state: shared
    new = object.__new__(type(module))  # the same attributes (so the same tables of tensors and hooks) ...
    vars(new).update(vars(module))
    vars(new)["_modules"] = children  # ... but its own submodules
    return new


class CausalConv1d(StreamingModule, nn.Conv1d):
    """Conv1d with left padding only. Input (B, C_in, T) -> output (B, C_out, T // stride); streaming, T a
    multiple of stride, it keeps its last ``left_pad`` (= kernel - stride, with dilation) inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, kernel, stride=stride, dilation=dilation, groups=groups)
        self.left_pad = (kernel - 1) * dilation - (stride - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.with_past(x, self.left_pad), self.weight, self.bias)


class ResidualUnit(StreamingModule):
    """SEANet residual unit: ELU -> dilated causal conv (C -> C/2) -> ELU -> 1x1 conv (C/2 -> C), plus skip."""

    def __init__(self, channels: int, dilation: int = 1, kernel: int = 3):
        super().__init__()
        hidden = channels // 2
        self.conv1 = CausalConv1d(channels, hidden, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class ConvNeXtBlock(StreamingModule):
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
