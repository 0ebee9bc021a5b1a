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

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .layers import StreamingModule


def _real(dtype: torch.dtype) -> torch.dtype:
    """float64 for a model run in float64 (tests of exactness), else float32 (also under bf16 autocast)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def sharpen(spec: torch.Tensor, gamma: float) -> torch.Tensor:
    """The decoder's postfilter: each frame's magnitudes (..., bins) raised to ``gamma``, then scaled back to
    the frame's energy, phases kept. With ``gamma`` > 1 spectral peaks (formants, harmonics) stand out more
    and the valleys between them, where a codec's noise sits, sink -- what the postfilters of classical
    speech codecs do. A model trained on L1 spectral losses draws its spectra a little flat (the mean of
    what the codes allow), and this undoes some of that."""
    mag = spec.abs()
    powered = mag ** gamma
    scale = (mag.square().sum(-1, keepdim=True) / powered.square().sum(-1, keepdim=True).clamp(min=1e-20)).sqrt()
    return torch.polar(powered * scale, spec.angle())


class ISTFTHead(StreamingModule):
    """features (B, T, dim) -> windowed STFT frames (``frames``, B, T * frames_per_latent, n_fft) -> waveform
    (``overlap_add``, B, T * frames_per_latent * hop). Streaming, it keeps its running phase and the overlap-add
    tail of samples that later windows still add to.

    Each latent frame's features are first expanded into ``frames_per_latent`` hidden vectors (one per STFT
    frame, GELU), then read out linearly as log-magnitude and phase advance: a plain linear read-out of all
    frames from ``dim`` features is too low-rank to draw the harmonic fine structure of voiced speech.
    Outside training each frame then passes the postfilter (``sharpen`` at ``postfilter``, the model's
    configured value unless a call gives its own; 1 = off)."""

    def __init__(self, dim: int, n_fft: int = 640, hop: int = 160, frames_per_latent: int = 2, hidden: int = 384,
                 postfilter: float = 1.0):
        super().__init__()
        self.n_fft, self.hop, self.k, self.hidden, self.postfilter = n_fft, hop, frames_per_latent, hidden, postfilter
        self.bins = n_fft // 2 + 1
        self.up = nn.Linear(dim, frames_per_latent * hidden)
        self.out = nn.Linear(hidden, 3 * self.bins)  # log-magnitude, phase advance, phase offset
        with torch.no_grad():  # start as steady tones at the bin centres: zero deviation and offset
            self.out.weight[self.bins:].zero_(), self.out.bias[self.bins:].zero_()
        bins = torch.arange(self.bins, dtype=torch.float64)
        self.register_buffer("centre", 2 * math.pi * bins * hop / n_fft, persistent=False)  # phase advance per frame
        self.register_buffer("phase0", math.pi * bins, persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True) * (hop * 2 / n_fft), persistent=False)

    def frames(self, x: torch.Tensor, source: torch.Tensor | None = None, voicing: torch.Tensor | None = None,
               postfilter: float | None = None) -> torch.Tensor:
        """features (B, T, dim) -> windowed frames (B, T*k, n_fft).

        ``source`` (B, T*k, bins) complex and ``voicing`` (B, T*k), or (B, T*k, bins) per bin: a harmonic
        excitation's spectrum (see ``HarmonicSource``); the frame becomes
        ``(1 - v) * own spectrum + v * magnitude * source``. ``postfilter``: None = ``self.postfilter``.
        The phase starts at ``phase0`` or, streaming, where the call before left it."""
        b, t, _ = x.shape
        h = F.gelu(self.up(x)).view(b, t * self.k, self.hidden)
        y = self.out(h).view(b, t * self.k, 3, self.bins)
        # magnitude capped at 100 (e^4.6) in value, with the gradient passed straight through the cap: a plain
        # clamp has none, so a frame that once overshoots stays stuck there (it cost a 50 ms start-up blip)
        logmag = y[:, :, 0]
        mag = torch.exp(logmag - (logmag - logmag.clamp(max=math.log(100.0))).detach())
        advance = (math.pi * torch.tanh(y[:, :, 1])).double() + self.centre
        phase = None if self.stream is None else self.stream.get("phase")
        start = self.phase0.expand(b, -1) if phase is None else phase
        # phase of frame j = start + advances of frames 0..j-1 (cumulative sum, wrapped to [0, 2 pi))
        total = torch.remainder(start[:, None] + torch.cumsum(advance, 1) - advance, 2 * math.pi)
        if self.stream is not None:  # the phase after the last frame (B, bins) float64
            self.stream["phase"] = torch.remainder(total[:, -1] + advance[:, -1], 2 * math.pi)
        spec = torch.polar(mag, total.to(_real(mag.dtype)) + y[:, :, 2])
        if source is not None:
            v = voicing[..., None] if voicing.dim() == 2 else voicing
            spec = spec * (1 - v) + mag * source * v
        gamma = self.postfilter if postfilter is None else postfilter
        if gamma != 1.0 and not self.training:  # training learns the plain output
            spec = sharpen(spec, gamma)
        return torch.fft.irfft(spec, n=self.n_fft) * self.window

    def fold(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, J, n_fft) -> (B, (J - 1) * hop + n_fft): the sum of the frames, each shifted by hop."""
        b, j, n = frames.shape
        out = F.fold(frames.transpose(1, 2), output_size=(1, (j - 1) * self.hop + n),
                     kernel_size=(1, n), stride=(1, self.hop))
        return out.view(b, -1)

    def overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, J, n_fft) -> (B, J * hop): ``fold`` with the first n_fft - hop samples (before the signal) cut.

        Streaming, the samples that became final (every window over them has arrived): the signal n_fft - hop
        samples late, so the first call gives that many fewer; ``flush`` gives the last ones."""
        if self.stream is None:
            return self.fold(frames)[:, self.n_fft - self.hop:]
        b, j, _ = frames.shape
        lap = self.n_fft - self.hop
        tail = self.stream.get("tail", frames.new_zeros(b, lap))
        summed = torch.cat([tail, frames.new_zeros(b, self.hop * j)], 1) + self.fold(frames)
        self.stream["tail"] = summed[:, j * self.hop:]
        skip = self.stream.get("skip", lap)  # samples before the signal, still to be cut
        cut = min(skip, j * self.hop)
        self.stream["skip"] = skip - cut
        return summed[:, cut:j * self.hop]

    def flush(self) -> torch.Tensor:
        """Streaming, at the end of the signal: its last samples (B, up to n_fft - hop), which no window
        follows; (0, 0) if nothing was streamed. The stream ends here."""
        tail = self.stream.pop("tail", self.window.new_zeros(0, 0))
        return tail[:, self.stream.pop("skip", 0):]


class HarmonicSource(StreamingModule):
    """features (B, T, dim) -> pitch and voicing per 10 ms frame, and the STFT of a harmonic excitation.

    A mel or STFT loss barely rewards an iSTFT head for the fine comb of pitch harmonics, and without it
    voiced speech sounds hoarse (PESQ near 1.3). This is the source of a source-filter vocoder: each 10 ms
    frame predicts a pitch ``f0`` (60 .. 500 Hz) and a voicing logit, both trained against a pitch tracker.
    The excitation is every harmonic of ``f0`` below 0.95 x Nyquist at unit amplitude,
    ``sum_k sin(k * phi)`` in closed form, with the phase ``phi`` integrating the pitch (interpolated
    linearly over each frame, from the previous frame's value, so it stays causal). Its STFT (the head's
    framing: window ``j`` ends at sample ``hop * (j + 1)``), scaled so that a harmonic peaks at 1, is a comb
    with coherent phases that the iSTFT head shapes with its magnitude (the filter)."""

    F0_MIN, F0_MAX = 60.0, 500.0

    def __init__(self, dim: int, n_fft: int = 640, hop: int = 160, frames_per_latent: int = 2,
                 hidden: int = 256, sample_rate: int = 16000, bands: int = 1):
        super().__init__()
        self.n_fft, self.hop, self.k, self.hidden, self.sr = n_fft, hop, frames_per_latent, hidden, sample_rate
        self.up = nn.Linear(dim, frames_per_latent * hidden)
        self.out = nn.Linear(hidden, 2)  # pitch, voicing logit
        with torch.no_grad():  # start at 173 Hz, half voiced
            self.out.weight.zero_(), self.out.bias.zero_()
        self.bands = None
        if bands > 1:  # voicing offsets at mel-spaced frequencies, zero at the start
            self.bands = nn.Linear(hidden, bands)
            with torch.no_grad():
                self.bands.weight.zero_(), self.bands.bias.zero_()
            mel = lambda f: 2595.0 * math.log10(1.0 + f / 700.0)
            centres = 700.0 * (10 ** (torch.linspace(0.0, mel(sample_rate / 2), bands, dtype=torch.float64) / 2595.0) - 1)
            freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
            # (bands, bins): each bin's linear interpolation weights between its two neighbouring centres
            interp = torch.from_numpy(np.stack([np.interp(freqs.numpy(), centres.numpy(), row) for row in np.eye(bands)]))
            self.register_buffer("interp", interp.float(), persistent=False)
        self.register_buffer("ramp", torch.arange(1, hop + 1, dtype=torch.float32) / hop, persistent=False)
        window = torch.hann_window(n_fft, periodic=True)
        self.register_buffer("window", window / (window.sum() / 2), persistent=False)  # unit sine -> peak 1

    def controls(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """features (B, T, dim) -> pitch (B, J) in Hz, voicing logit (B, J) and, with bands, the voicing logit
        per bin (B, J, bins); J = T * k."""
        b, t, _ = x.shape
        h = F.gelu(self.up(x)).view(b, t * self.k, self.hidden)
        y = self.out(h)
        f0 = self.F0_MIN * torch.exp(math.log(self.F0_MAX / self.F0_MIN) * torch.sigmoid(y[..., 0]))
        per_bin = None if self.bands is None else y[..., 1:2] + self.bands(h) @ self.interp
        return f0, y[..., 1], per_bin

    def excitation(self, f0: torch.Tensor, f0_prev: torch.Tensor, phase0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pitch per frame (B, J), the pitch before it (B, 1), phase before it (B, 1) float64
        -> (excitation (B, J * hop), phase after its last sample)."""
        b, j = f0.shape
        start = torch.cat([f0_prev, f0[:, :-1]], 1)
        f0_n = (start[..., None] + (f0 - start)[..., None] * self.ramp).reshape(b, j * self.hop)
        # float64 throughout: the phase accumulates thousands of radians and the closed form divides by sin(phi/2)
        phi = torch.remainder(phase0 + torch.cumsum(2 * math.pi * f0_n.double() / self.sr, 1), 2 * math.pi)
        n = torch.floor(0.95 * self.sr / 2 / f0_n.double())      # harmonics below 0.95 x Nyquist
        half = torch.sin(phi / 2)
        small = half.abs() < 1e-6
        wav = torch.sin(n * phi / 2) * torch.sin((n + 1) * phi / 2) / torch.where(small, torch.ones_like(half), half)
        return torch.where(small, torch.zeros_like(wav), wav).to(_real(f0.dtype)), phi[:, -1:]

    def forward(self, x: torch.Tensor, f0_target: torch.Tensor | None = None):
        """features (B, T, dim) -> (source spectrum (B, J, bins) complex, voicing in 0..1 (B, J), or
        (B, J, bins) with bands, (predicted pitch, voicing logit) (B, J) each).

        ``f0_target`` (B, J) (Hz, 0 = unvoiced), where > 0, replaces the predicted pitch of the excitation
        (teacher forcing in training). Streaming, the pitch, phase and last ``n_fft - hop`` excitation
        samples carry over from call to call."""
        f0_pred, voicing, per_bin = self.controls(x)
        f0 = f0_pred.detach()  # pitch is learned from the tracker's targets, not through the excitation
        if f0_target is not None:
            f0 = torch.where(f0_target > 0, f0_target, f0)
        if self.stream:  # a stream's second call or later
            f0_prev, phase0 = self.stream["f0"], self.stream["phase"]
        else:
            f0_prev, phase0 = f0[:, :1], torch.zeros(f0.shape[0], 1, dtype=torch.float64, device=x.device)
        wav, phase = self.excitation(f0, f0_prev, phase0)
        full = self.with_past(wav, self.n_fft - self.hop)
        spec = torch.fft.rfft(full.unfold(1, self.n_fft, self.hop) * self.window)
        if self.stream is not None:
            self.stream.update(f0=f0[:, -1:], phase=phase)
        return spec, torch.sigmoid(voicing if per_bin is None else per_bin), (f0_pred, voicing)
