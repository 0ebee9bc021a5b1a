"""A differentiable approximation of PESQ-WB (ITU-T P.862.2): ``probe_quiet.py`` uses it to split PESQ's
disturbance into its symmetric and asymmetric terms. As a training loss it lowered the real PESQ-WB
(docs/training-log.md), so training does not use it."""
from __future__ import annotations

import math

import torch
from torch import nn

# ITU-T P.862 tables for 16 kHz (P.862.2 wide-band): FFT bins (of 256, 31.25 Hz each) per Bark band, band
# widths in Bark, power-density corrections and absolute hearing thresholds per band.
_BAND_BINS = [1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 3, 4, 5, 4,
              5, 6, 6, 7, 8, 9, 9, 12, 12, 15, 16, 18, 21, 25, 20]
_BAND_BARK = [0.157344, 0.317994, 0.322441, 0.326934, 0.331474, 0.336061, 0.340697, 0.345381, 0.350114, 0.354897,
              0.359729, 0.364611, 0.369544, 0.374529, 0.379565, 0.384653, 0.389794, 0.394989, 0.400236, 0.405538,
              0.410894, 0.416306, 0.421773, 0.427297, 0.432877, 0.438514, 0.444209, 0.449962, 0.455774, 0.461645,
              0.467577, 0.473569, 0.479621, 0.485736, 0.491912, 0.498151, 0.504454, 0.510819, 0.517250, 0.523745,
              0.530308, 0.536934, 0.543629, 0.550390, 0.557220, 0.564119, 0.571085, 0.578125, 0.585232]
_DENSITY = [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 50.0, 100.0, 100.0, 100.0, 100.0, 100.0,
            53.047077, 110.000046, 117.991989, 65.0, 68.760147, 69.999931, 71.428818, 75.000038, 76.843384,
            80.968781, 88.646126, 63.864388, 68.155350, 72.547775, 75.584831, 58.379192, 80.950836, 64.135651,
            54.384785, 73.821884, 64.437073, 59.176456, 65.521278, 61.399822, 58.144047, 57.004543, 64.126297,
            54.311001, 61.114979, 55.077751, 56.849335, 55.628868, 53.137054, 54.985844, 79.546974]
_THRESHOLD = [51286152.0, 2454709.5, 70794.59375, 4897.788574, 1174.897705, 389.045166, 104.71286, 45.70882,
              17.782795, 9.772372, 4.897789, 3.090296, 1.905461, 1.258925, 0.977237, 0.724436, 0.562341, 0.457088,
              0.389045, 0.331131, 0.295121, 0.269153, 0.25704, 0.251189, 0.251189, 0.251189, 0.251189, 0.263027,
              0.288403, 0.30903, 0.338844, 0.371535, 0.398107, 0.436516, 0.467735, 0.489779, 0.501187, 0.501187,
              0.512861, 0.524807, 0.524807, 0.524807, 0.512861, 0.47863, 0.42658, 0.371535, 0.363078, 0.416869,
              0.537032]


class PesqLoss(nn.Module):
    """A differentiable approximation of PESQ-WB (ITU-T P.862 with the P.862.2 input filter), as a loss.

    A log-mel loss treats every band and every direction of error alike. PESQ does not: it compares the
    *loudness* of the two signals in 49 Bark bands per 32 ms frame, after levelling them and forgiving a
    fixed spectral tilt and slow gain changes, and punishes *added* energy (noise in pauses and between
    harmonics) several times more than missing energy. This loss follows those steps:

    level the signals (power in 325-3250 Hz) -> 100 Hz high-pass input filter -> 512-point Hann STFT, hop
    256 -> Bark-band powers -> equalise the reference's spectrum and each frame's gain towards the decoded
    signal -> Zwicker loudness -> disturbance outside a dead zone -> symmetric (L2) and asymmetric (L1) norms
    over bands -> L6 over 20-frame windows, L2 over windows; loss = 0.1 * D + 0.0309 * DA, the amount P.862
    subtracts from 4.5. Unlike the standard there is no time alignment (the codec's output is aligned), and
    the level alignment and the spectrum and gain compensations are constants for the gradient: they are
    forgiven, not something to optimise (the mel loss holds the level).

    Measured (``scripts/train.py --pesq-weight 2``, from the shipped weights): with the gradient through the
    level alignment the decoder learned a start-up burst that games the real PESQ too; in this form, and
    with both signals levelled by the reference's gain, real PESQ-WB fell by 0.1-0.15 within 1,000 steps.
    So it is off by default; kept, with its tests, as the tool for trying again.
    Learned from the structure of ``torch-pesq`` (MIT), which needs torchaudio; written here for torch alone.
    Only ``scripts/train.py`` uses it; the benchmark measures real PESQ with the ``pesq`` package.
    """

    def __init__(self):
        super().__init__()
        fb = torch.zeros(49, 256)
        edges = [0] + list(torch.cumsum(torch.tensor(_BAND_BINS), 0))
        for i in range(49):
            fb[i, edges[i]:edges[i + 1]] = 1.0
        self.register_buffer("fb", fb * (torch.tensor(_DENSITY) * 6.910853e-6)[:, None], persistent=False)
        self.register_buffer("thr", torch.tensor(_THRESHOLD), persistent=False)
        self.register_buffer("width", torch.tensor(_BAND_BARK), persistent=False)
        centre_hz = (torch.tensor(edges[:-1]) + torch.tensor(edges[1:]) - 1) / 2 * 31.25
        bark = 13 * torch.atan(0.00076 * centre_hz) + 3.5 * torch.atan((centre_hz / 7500) ** 2)
        self.register_buffer("exp", (6 / (bark + 2)).clamp(1, 2) ** 0.15 * 0.23, persistent=False)
        self.register_buffer("window", torch.hann_window(512), persistent=False)

    def _filtered(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (x through the wide-band 100 Hz high-pass, the gain that levels x to P.862's power of 1e7 in
        325-3250 Hz on the 16-bit scale), both via the FFT."""
        n = x.shape[-1]
        spec = torch.fft.rfft(x)
        f = torch.arange(spec.shape[-1], device=x.device) * 16000 / n
        band = ((f >= 325) & (f <= 3250)).to(x.dtype)
        power = torch.fft.irfft(spec * band, n=n).square().sum(-1, keepdim=True) / (n + 5120) / 1.04684
        z = torch.exp(-2j * math.pi * f / 16000)
        hp = (2.740826 - 5.4816519 * z + 2.740826 * z ** 2) / (1 - 1.9444777 * z + 0.94597794 * z ** 2)
        return torch.fft.irfft(spec * hp, n=n), (1e7 / power.clamp(min=1e-12)).sqrt()

    def _bark(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """(B, T) -> Bark power (B, frames, 49), DC removed."""
        frames = (x * gain).unfold(-1, 512, 256) * self.window
        power = torch.fft.rfft(frames).abs().square()[..., :256]
        power = power * (torch.arange(256, device=x.device) > 0)
        return power @ self.fb.T

    def _audible(self, p: torch.Tensor, factor: float) -> torch.Tensor:
        return (p * (p > self.thr * factor)).sum(-1)

    def _loudness(self, p: torch.Tensor) -> torch.Tensor:
        base = (2 * self.thr) ** self.exp * ((0.5 + 0.5 * p / self.thr) ** self.exp - 1)
        return 0.1866055 * base.clamp(min=0)

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        sym, asym = self.terms(x_hat, x)
        return (sym + asym).mean()

    def terms(self, x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss's two parts per clip (B,): 0.1 x the symmetric disturbance and 0.0309 x the asymmetric
        one (energy the decoded signal adds weighs up to 12 times more than energy it lacks)."""
        (deg, deg_level), (ref, ref_level) = self._filtered(x_hat.flatten(0, 1)), self._filtered(x.flatten(0, 1))
        # each signal levelled on its own, as P.862 does, but with the gain a constant for the gradient: through
        # it the cheapest way down was to inflate a short burst, which takes over the decoded signal's levelling
        # and turns every other frame's excess into a cheaper deficit (a 50 ms start-up blip)
        deg, ref = self._bark(deg, deg_level.detach()), self._bark(ref, ref_level)
        # equalise the reference's long-term spectrum to the degraded one (over speech frames, within +-20 dB)
        speech = (self._audible(ref, 1e2) >= 1e7)[..., None]
        mean = lambda p: (p * (p > self.thr * 100) * speech).mean(1, keepdim=True)
        ref = ref * ((mean(deg) + 1000) / (mean(ref) + 1000)).clamp(0.01, 100.0).detach()
        # ... and each degraded frame's gain to the reference (smoothed over one frame, as P.862 does)
        ref_audible = self._audible(ref, 1)
        gain = (ref_audible + 5e3) / (self._audible(deg, 1) + 5e3)
        gain = torch.cat([gain[:, :1], 0.8 * gain[:, 1:] + 0.2 * gain[:, :-1]], 1).clamp(3e-4, 5.0)
        deg = deg * gain[..., None].detach()  # compensations are forgiven, not something to optimise
        ld, lr = self._loudness(deg), self._loudness(ref)
        d = ld - lr
        d = d.sign() * ((d.abs() - 0.25 * torch.minimum(ld, lr)).clamp(min=0))
        asym = ((deg + 50) / (ref + 50)) ** 1.2
        asym = torch.where(asym < 3, torch.zeros_like(asym), asym.clamp(max=12))
        w, total = self.width[1:], self.width[1:].sum()
        sym_d = ((w * d[..., 1:]).square().sum(-1) * total).clamp(min=1e-20).sqrt()
        asym_d = (w * (d * asym)[..., 1:]).abs().sum(-1)
        h = ((ref_audible + 1e5) / 1e7) ** 0.04
        sym_d, asym_d = (sym_d / h).clamp(max=45), (asym_d / h).clamp(max=45)

        def aggregate(v: torch.Tensor) -> torch.Tensor:  # L6 over 20-frame windows (half overlap), L2 over them
            win = v.unfold(1, min(20, v.shape[1]), 10)
            return win.pow(6).mean(-1).clamp(min=1e-30).pow(1 / 6).square().mean(-1).clamp(min=1e-20).sqrt()

        return 0.1 * aggregate(sym_d), 0.0309 * aggregate(asym_d)

    @staticmethod
    def mos(loss: torch.Tensor) -> torch.Tensor:
        """P.862.2's mapping of the raw score (4.5 - loss) to MOS-LQO, for comparison with ``pesq``."""
        return 0.999 + 4 / (1 + torch.exp(-1.3669 * (4.5 - loss) + 3.8224))
