"""The hybrid modes' low band as an input of the decoder, and the torch twin of ``lowband.py`` that trains it.

In a hybrid stream (``lowband.py``) the receiver gets, beside the codes, the MDCT coefficients of the band
below the cutoff, and puts them in place of the neural output's own. ``LowBandInput`` lets the decoder hear
them first: it then knows the exact harmonics, level and onsets of the low band while it draws the band
above, and, trained on the output as the listener gets it (low band replaced), spends nothing on the band
that is replaced anyway. MDCT frame ``t`` ends where latent frame ``t`` ends (``lowband.py``), so the decoder
hears it with the frame's codes: no delay beyond the layer's own.

The features of a frame, for each 200 Hz band up to ``coefs``: whether the band was sent, its level (log2 of
its RMS, scaled to 0..1 over the layer's scale range) and its coefficients divided by that RMS (clipped to
+-4). Coefficients not sent are NaN: the bands above a stream's cutoff, and every band of a frame lost in
transit; their features are zeros. A small
MLP maps them onto the latent, added like ``PitchInput``; its last layer starts at zero, so it joins trained
weights without changing their output, and a stream without a low band hears nothing.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..lowband import BAND, HOP, Q_MAX, S_MAX, S_MIN, _basis


def band_features(coefs: torch.Tensor, n: int) -> torch.Tensor:
    """Sent coefficients (B, T, m), m <= n, NaN where not sent (bands above the cutoff, frames lost in
    transit) -> features (B, T, 2 n / BAND + n): per band sent, level, then the normalised coefficients."""
    b, t, m = coefs.shape
    c = F.pad(coefs.float(), (0, n - m), value=float("nan")).view(b, t, n // BAND, BAND)
    sent = ~torch.isnan(c).any(-1)
    c = torch.nan_to_num(c, nan=0.0) * sent[..., None]
    rms = c.square().mean(-1).sqrt()
    level = ((2 * torch.log2(rms.clamp(min=2.0 ** (S_MIN / 2))) - S_MIN) / (S_MAX - S_MIN)).clamp(0, 1)
    norm = (c / rms.clamp(min=1e-9)[..., None]).clamp(-4, 4)
    return torch.cat([sent.float(), level * sent, norm.view(b, t, n)], -1)


class LowBandInput(nn.Module):
    """latents (B, latent_dim, T) + a map of the sent low band's ``band_features`` (up to ``coefs`` MDCT
    coefficients: 56 = 1400 Hz, the widest hybrid mode's band)."""

    def __init__(self, latent_dim: int, coefs: int = 56, hidden: int = 256):
        super().__init__()
        self.coefs = coefs
        self.up = nn.Linear(2 * coefs // BAND + coefs, hidden)
        self.out = nn.Linear(hidden, latent_dim)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim, T); coefs (B, >= T, m) the sent low band, frame t beside latent frame t (a hybrid
        stream sends one MDCT frame more than codes: the extra is ignored)."""
        feats = band_features(coefs[:, :z.shape[-1]], self.coefs)
        return z + self.out(F.gelu(self.up(feats))).transpose(1, 2)


class TorchLowBand(nn.Module):
    """``lowband.LowBand``'s transform and quantizer in torch, batched, for training: each clip may have its
    own cutoff and SNR. ``sent(x)`` is what a receiver gets, ``replace(y, sent)`` what it plays."""

    def __init__(self, coefs: int = 56):
        super().__init__()
        self.coefs = coefs
        self.register_buffer("basis", torch.from_numpy(_basis(coefs)).float(), persistent=False)

    def mdct(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L), L a multiple of HOP -> (B, L / HOP + 1, coefs), as ``LowBand.mdct``."""
        return F.pad(x, (HOP, HOP)).unfold(-1, 2 * HOP, HOP) @ self.basis

    def imdct(self, coefs: torch.Tensor, length: int) -> torch.Tensor:
        """(B, F, coefs) -> (B, length), as ``LowBand.imdct``."""
        segs = coefs @ self.basis.T
        b, f, n = segs.shape
        out = F.fold(segs.transpose(1, 2), output_size=(1, (f + 1) * HOP), kernel_size=(1, n), stride=(1, HOP))
        return out.view(b, -1)[:, HOP:HOP + length]

    def sent(self, x: torch.Tensor, cutoff_hz: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """(B, L) and per clip (B,) cutoff (0: none) and SNR -> the dequantized coefficients (B, F, coefs),
        NaN above each clip's cutoff (``LowBand.quantize`` then ``dequantize``)."""
        c = self.mdct(x)
        b, f, n = c.shape
        rms = c.view(b, f, n // BAND, BAND).square().mean(-1).sqrt()
        s = torch.round(2 * torch.log2(rms.clamp(min=1e-30))).clamp(S_MIN, S_MAX)
        spread = (10 ** (snr_db / 20) / math.sqrt(12)).view(b, 1, 1)
        step = (2.0 ** (s / 2) / spread * (s > S_MIN)).repeat_interleave(BAND, -1)
        q = torch.round(c / step.clamp(min=1e-30)).clamp(-Q_MAX, Q_MAX)
        keep = torch.arange(n, device=x.device) < (cutoff_hz // 25).view(b, 1, 1)
        return torch.where(keep, q * step, float("nan"))

    def replace(self, y: torch.Tensor, sent: torch.Tensor) -> torch.Tensor:
        """y (B, L) with its coefficients replaced by those ``sent`` (B, F, coefs) holds (not NaN)."""
        keep = ~torch.isnan(sent)
        return y + self.imdct((torch.nan_to_num(sent) - self.mdct(y)) * keep, y.shape[-1])
