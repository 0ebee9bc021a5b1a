"""The periodicity of a signal's low band at a given pitch (``probe_voicing.py``).

As a training loss (the output as periodic below 1 kHz as the input on voiced frames) it closed about a third
of the gap for low voices and left PESQ-WB level (docs/training-log.md), so training does not use it."""
from __future__ import annotations

import torch
from torch import nn


class Periodicity(nn.Module):
    """``periodicity``: the largest normalised autocorrelation of a frame's band below ``cutoff``, at lags
    within ``tol`` of the tracker's pitch period, with the window's own autocorrelation divided out (Boersma
    1993): about 1 for a steady harmonic sound, near 0 for noise."""

    def __init__(self, win: int = 1024, hop: int = 160, cutoff: float = 1000.0, tol: float = 0.08, sr: int = 16000,
                 f0_min: float = 60.0, f0_max: float = 500.0):
        super().__init__()
        self.win, self.n_fft, self.hop, self.tol, self.sr, self.f0_min = win, 2 * win, hop, tol, sr, f0_min
        window = torch.hann_window(win)
        freqs = torch.arange(self.n_fft // 2 + 1) * sr / self.n_fft
        lags = torch.arange(int(sr / f0_max / (1 + tol)), int(sr / f0_min * (1 + tol)) + 2)
        r_win = torch.fft.irfft(torch.fft.rfft(window, n=self.n_fft).abs() ** 2, n=self.n_fft)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("band", ((freqs > 0) & (freqs < cutoff)).float()[:, None], persistent=False)
        self.register_buffer("lags", lags, persistent=False)
        self.register_buffer("r_win", (r_win[lags] / r_win[0])[:, None], persistent=False)

    def periodicity(self, x: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """x (B, T), pitch (B, J) with value j at sample ``hop * (j + 1)`` (``dataset.pitch_targets``; 0 =
        unvoiced) -> rho (B, J)."""
        j = f0.shape[1]
        spec = torch.stft(x, self.n_fft, self.hop, win_length=self.win, window=self.window, center=True,
                          return_complex=True)[:, :, 1:j + 1]              # frame i is centred on sample hop * i
        r = torch.fft.irfft((spec.real ** 2 + spec.imag ** 2) * self.band, n=self.n_fft, dim=1)
        rho = r[:, self.lags] / (r[:, :1] + 1e-9) / self.r_win          # (B, lags, J)
        period = self.sr / f0.clamp(min=self.f0_min)                     # (B, J) samples
        near = (self.lags[None, :, None] >= period[:, None] / (1 + self.tol)) & \
               (self.lags[None, :, None] <= period[:, None] * (1 + self.tol))
        return rho.masked_fill(~near, -1.0).amax(1)
