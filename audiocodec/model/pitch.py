"""The sender's pitch: a small pitch tracker, and the 8-bit code that carries its pitch in the bitstream.

Why send the pitch: the decoder's harmonic source predicts a pitch from the codes alone, and for low voices
that guess is an octave off on about a third of the voiced frames (docs/training-log.md). Decoding with a real
pitch tracker's pitch in its place raises PESQ-WB by about 0.1 at 6 kbps. WORLD's Harvest, the tracker the
decoder was trained against, runs at 3x real time on one core, too slow for a codec, so ``PitchTracker``
learns to imitate it: from log-magnitude spectra (64 ms windows every 10 ms) it classifies each 10 ms frame
as unvoiced or as one of 128 log-spaced pitches (60 .. 500 Hz), trained on Harvest's pitch of the training
split (``scripts/train_pitch.py``). Its layers only look back, so it streams; but it is trained to give the
pitch of 20 ms before the newest sample it has heard (``LOOKAHEAD``), because a causal version lagged Harvest
by about 20 ms, and a pitch 20 ms late costs more than the decoder's own guess. So a stream that sends the
pitch hands each frame over one frame later (70 ms of latency instead of 50; ``streaming.py``).

The code: one pitch per 20 ms codec frame (the pitch at the end of the frame), 8 bits, 0 = unvoiced and
1 .. 255 a log-spaced pitch from 60 to 500 Hz (steps of 1.2 % of an octave). The 10 ms frame in between
takes the geometric mean of its neighbours (``dequantize``)."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import CausalConv1d, StreamingModule

F0_MIN, F0_MAX = 60.0, 500.0
CODE_BITS = 8
_LEVELS = (1 << CODE_BITS) - 1  # voiced symbols 1 .. 255
# each symbol's pitch in Hz (0: unvoiced), computed once in float64: a float32 pow rounds differently in
# vectorised and scalar code, so a stream decoded in chunks would hear pitches an ulp off the offline ones
_HZ = torch.cat([torch.zeros(1, dtype=torch.float64),
                 F0_MIN * (F0_MAX / F0_MIN) ** (torch.arange(_LEVELS, dtype=torch.float64) / (_LEVELS - 1))]).float()


class PitchTracker(StreamingModule):
    """wav (B, 1, T) -> per 10 ms frame ``j`` (window ending at sample ``hop * (j + 1)``) logits over
    [unvoiced, 128 pitch classes]; ``track`` turns them into Hz (0 = unvoiced).

    Each frame's spectrum is read by a small MLP, then four causal convolutions over frames (dilations 1, 2,
    4, 8: the last 310 ms) let a frame's decision lean on the pitch track so far, as a tracker's does."""

    N_FFT, HOP, BINS, CLASSES = 1024, 160, 128, 128
    DILATIONS = (1, 2, 4, 8)
    LOOKAHEAD = 2  # output j is the pitch at the end of frame j - LOOKAHEAD: it has heard 20 ms past it

    def __init__(self, dim: int = 256, hidden: int = 384):
        super().__init__()
        self.history = self.N_FFT - self.HOP  # past samples the first window needs
        self.register_buffer("window", torch.hann_window(self.N_FFT, periodic=True), persistent=False)
        self.inp = nn.Sequential(nn.Linear(self.BINS + 1, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.convs = nn.ModuleList(CausalConv1d(dim, dim, 3, dilation=d) for d in self.DILATIONS)
        self.out = nn.Linear(dim, 1 + self.CLASSES)
        step = math.log2(F0_MAX / F0_MIN) / (self.CLASSES - 1)
        self.register_buffer("octaves", torch.arange(self.CLASSES) * step, persistent=False)  # above F0_MIN

    def spectra(self, samples: torch.Tensor) -> torch.Tensor:
        """(B, history + T) samples -> (B, T / HOP, BINS + 1) per window: log magnitudes of bins 1..128
        (16..2000 Hz) less their frame's maximum, and the frame's log level (its maximum), both scaled."""
        spec = torch.stft(samples, self.N_FFT, self.HOP, window=self.window, center=False, return_complex=True)
        logmag = torch.log(spec[:, 1:self.BINS + 1].abs() + 1e-5).transpose(1, 2)  # (B, J, BINS)
        peak = logmag.amax(-1, keepdim=True)
        return torch.cat([(logmag - peak).clamp(min=-12.0) / 4.0, (peak + 4.0) / 4.0], -1)

    def logits(self, spectra: torch.Tensor) -> torch.Tensor:
        """spectra (B, J, BINS + 1) -> logits (B, J, 1 + CLASSES)."""
        x = self.inp(spectra).transpose(1, 2)
        for layer in self.convs:
            x = x + layer(F.gelu(x))
        return self.out(F.gelu(x).transpose(1, 2))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, 1, T), T a multiple of HOP -> logits (B, T / HOP, 1 + CLASSES). The first window reaches
        ``history`` samples before the signal: zeros, or streaming the end of the call before."""
        return self.logits(self.spectra(self.with_past(wav[:, 0], self.history)))

    def to_hz(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (..., 1 + CLASSES) -> pitch in Hz (0 where unvoiced is likelier than voiced): the average
        of the classes within two of the likeliest, weighted by their probability."""
        p = logits.softmax(-1)
        voiced = p[..., 0] < 0.5
        cls = p[..., 1:]
        best = cls.argmax(-1, keepdim=True)
        near = (torch.arange(self.CLASSES, device=logits.device) - best).abs() <= 2
        w = cls * near
        octaves = (w * self.octaves).sum(-1) / w.sum(-1).clamp(min=1e-12)
        return torch.where(voiced, F0_MIN * torch.pow(2.0, octaves), torch.zeros_like(octaves))

    @torch.no_grad()
    def track(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, 1, T) -> pitch (B, T / HOP) in Hz, 0 = unvoiced; value j is the pitch at the end of 10 ms
        frame j - LOOKAHEAD."""
        return self.to_hz(self(wav))

    def targets(self, f0: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
        """Tracker pitch (..., ) in Hz (0 = unvoiced) -> soft class targets (..., 1 + CLASSES): unvoiced
        one-hot, or a Gaussian of ``sigma`` classes around the pitch."""
        voiced = f0 > 0
        pos = torch.log2(f0.clamp(min=F0_MIN, max=F0_MAX) / F0_MIN) / self.octaves[1]
        g = torch.exp(-0.5 * ((torch.arange(self.CLASSES, device=f0.device) - pos[..., None]) / sigma) ** 2)
        g = g / g.sum(-1, keepdim=True)
        return torch.cat([(~voiced).float()[..., None], g * voiced[..., None]], -1)


def quantize(f0: torch.Tensor) -> torch.Tensor:
    """Pitch in Hz (0 = unvoiced), any shape -> int64 symbols in [0, 256)."""
    pos = torch.log2(f0.clamp(min=F0_MIN, max=F0_MAX) / F0_MIN) / math.log2(F0_MAX / F0_MIN)
    return torch.where(f0 > 0, 1 + torch.round(pos * (_LEVELS - 1)).long(), torch.zeros_like(f0, dtype=torch.long))


def to_hz(symbols: torch.Tensor) -> torch.Tensor:
    """Inverse of ``quantize`` (symbols in [0, 256); 0 -> 0 Hz)."""
    return _HZ.to(symbols.device)[symbols.long().clamp(0, _LEVELS)]


def frame_symbols(f0: torch.Tensor) -> torch.Tensor:
    """Pitch per 10 ms (B, 2 * frames) -> the symbols sent, one per 20 ms frame (B, frames): the quantized
    pitch at the end of each frame."""
    return quantize(f0[:, 1::2])


def dequantize(symbols: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Symbols (B, frames) -> pitch per 10 ms (B, 2 * frames), Hz, 0 = unvoiced: each frame's second half
    is its symbol; its first half the geometric mean of that and the previous frame's when both are voiced,
    else its own. ``previous`` (B, 1): the symbol before the first (streaming), None at a start."""
    hz = to_hz(symbols)
    before = torch.cat([hz[:, :1] if previous is None else to_hz(previous), hz[:, :-1]], 1)
    first = torch.where((hz > 0) & (before > 0), torch.sqrt(hz * before), hz)
    return torch.stack([first, hz], -1).flatten(1)
