"""Frame-by-frame encoder and decoder that give the same output as the offline path.

Pattern (after Moshi/Mimi): the model is never changed; each causal conv keeps the last ``left_pad``
inputs it saw in a small state dict that lives in the streaming object, and the iSTFT head keeps the
overlapping tail of its windows. The caller feeds whole 20 ms frames (320 samples).

Algorithmic latency: 20 ms to fill a frame + 30 ms overlap-add tail in the decoder = 50 ms.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .model import Codec
from .model.decoder import Decoder
from .model.encoder import Encoder
from .model.layers import CausalConv1d, ConvNeXtBlock, ResidualUnit

FRAME = 320          # samples per codec frame (20 ms at 16 kHz)
LATENCY_MS = 50.0    # frame (20 ms) + iSTFT overlap tail (30 ms)


def _conv(conv: CausalConv1d, x: torch.Tensor, state: dict) -> torch.Tensor:
    """Run a causal conv on a chunk, remembering the last ``left_pad`` inputs for the next chunk."""
    p = conv.left_pad
    buf = state.get(id(conv))
    if buf is None:
        buf = x.new_zeros(x.shape[0], x.shape[1], p)
    xc = torch.cat([buf, x], -1)
    state[id(conv)] = xc[..., xc.shape[-1] - p:]
    return F.conv1d(xc, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def _residual(unit: ResidualUnit, x: torch.Tensor, state: dict) -> torch.Tensor:
    return x + unit.conv2(F.elu(_conv(unit.conv1, F.elu(x), state)))


def _convnext(block: ConvNeXtBlock, x: torch.Tensor, state: dict) -> torch.Tensor:
    y = _conv(block.dwconv, x, state).transpose(1, 2)
    y = block.fc2(F.gelu(block.fc1(block.norm(y))))
    return x + (block.gamma * y).transpose(1, 2)


def _run(module, x: torch.Tensor, state: dict) -> torch.Tensor:
    if isinstance(module, CausalConv1d):
        return _conv(module, x, state)
    if isinstance(module, ResidualUnit):
        return _residual(module, x, state)
    if isinstance(module, ConvNeXtBlock):
        return _convnext(module, x, state)
    return module(x)  # pointwise layers (ELU) carry no state


def encoder_step(enc: Encoder, wav: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """wav chunk (B, 1, k * 320) -> latents (B, latent_dim, k) in ``Encoder.parts``' two parts (SEANet, spectral
    branch or None)."""
    x = _conv(enc.conv_in, wav, state)
    for m in list(enc.stages) + list(enc.blocks):
        x = _run(m, x, state)
    z = enc.proj(enc.norm(x.transpose(1, 2))).transpose(1, 2)
    if enc.spectral is None:
        return z, None
    samples = enc.spectral.with_history(wav, state.get(id(enc.spectral)))
    state[id(enc.spectral)] = samples[:, -enc.spectral.history:]  # for the next chunk's first windows
    return z, enc.spectral.read(samples)


def decoder_step(dec: Decoder, z: torch.Tensor, state: dict) -> torch.Tensor:
    """latents (B, latent_dim, k) -> features (B, k, dim)."""
    x = dec.norm_in(_conv(dec.embed, z, state).transpose(1, 2)).transpose(1, 2)
    for block in dec.blocks:
        x = _convnext(block, x, state)
    return dec.norm_out(x.transpose(1, 2))


class StreamingEncoder:
    """Push any number of samples; get codes for every completed 20 ms frame.

    >>> enc = StreamingEncoder(codec, n_q=12)
    >>> codes = enc.push(samples)   # (n_q, frames_completed) int64
    """

    def __init__(self, codec: Codec, n_q: int):
        self.codec, self.n_q = codec, n_q
        self.state: dict = {}
        self.pending = np.zeros(0, dtype=np.float32)

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32)])
        k = len(self.pending) // FRAME
        if k == 0:
            return np.zeros((self.n_q, 0), dtype=np.int64)
        chunk, self.pending = self.pending[: k * FRAME], self.pending[k * FRAME:]
        z, late = encoder_step(self.codec.encoder, torch.from_numpy(chunk)[None, None], self.state)
        return self.codec.quantizer.encode(z, self.n_q, late)[0].numpy()

    def flush(self) -> np.ndarray:
        """Zero-pad the last partial frame (if any) and encode it."""
        if len(self.pending) == 0:
            return np.zeros((self.n_q, 0), dtype=np.int64)
        return self.push(np.zeros(FRAME - len(self.pending), dtype=np.float32))


class StreamingDecoder:
    """Push one frame of codes (or a latent vector) at a time; get the samples that became final.

    Output concatenated over all pushes plus ``flush()`` equals ``codec.decode`` of all codes.
    The first push returns nothing, the second 160 samples, then 320 per push; flush returns 480.
    """

    def __init__(self, codec: Codec):
        self.codec = codec
        head = codec.head
        self.n_fft, self.hop = head.n_fft, head.hop
        self.state: dict = {}
        self.tail = torch.zeros(self.n_fft - self.hop)  # overlap-add accumulator for samples not yet final
        self.position = -(self.n_fft - self.hop)        # timeline index of tail[0]
        self.last_latent: torch.Tensor | None = None
        self.synth_state: dict | None = None            # the head's running phase, the harmonic source's state

    def latent_of(self, codes: np.ndarray) -> torch.Tensor:
        """codes (n_q,) -> quantized latent (latent_dim,)."""
        c = torch.as_tensor(np.asarray(codes, dtype=np.int64))[None, :, None]
        with torch.no_grad():
            return self.codec.quantizer.decode(c)[0, :, 0]

    @torch.no_grad()
    def push(self, codes: np.ndarray) -> np.ndarray:
        """codes (n_q,) for one frame, or (n_q, k) for k frames -> the samples that became final."""
        c = np.asarray(codes, dtype=np.int64)
        c = c[:, None] if c.ndim == 1 else c
        z = self.codec.quantizer.decode(torch.from_numpy(c)[None])[0]
        return self.push_latent(z)

    @torch.no_grad()
    def push_latent(self, z: torch.Tensor) -> np.ndarray:
        """z (latent_dim,) or (latent_dim, k) quantized latents -> final samples (float32)."""
        z = z[:, None] if z.dim() == 1 else z
        self.last_latent = z[:, -1]
        feats = decoder_step(self.codec.decoder, z[None], self.state)
        frames, _, self.synth_state = self.codec.frames(feats, state=self.synth_state)
        ola = self.codec.head.fold(frames)[0]
        buf = torch.cat([self.tail, torch.zeros(self.hop * frames.shape[1])]) + ola
        done = len(buf) - (self.n_fft - self.hop)
        out, self.tail = buf[:done], buf[done:]
        start = self.position
        self.position += done
        if start < 0:
            out = out[-start:] if -start < len(out) else out[:0]
        return out.numpy().astype(np.float32)

    def flush(self) -> np.ndarray:
        """The last overlap tail (all windows have arrived once the stream ends)."""
        out = self.tail[max(0, -self.position):].numpy().astype(np.float32)
        self.position += len(self.tail)
        self.tail = torch.zeros(0)
        return out
