"""How many of the hybrid low band's bits a long-term (pitch) predictor could save, as SILK's LTP or AAC-LTP do.

    python research/probe_lowband_ltp.py [--kbps 12] [--clips 30] [--seconds 4]

The low band (``stream/lowband.py``) quantizes each frame's MDCT coefficients below the cutoff on their own.
Voiced speech repeats every pitch period, so the receiver could predict a frame from the low band it has
already rebuilt: copy it back by one pitch lag L (cycle after cycle where the window reaches past what is
final: a frame's window starts where the rebuilt signal ends), take that copy's MDCT, and code only the
residual ``c - g p`` per 200 Hz band. The residual is quantized with the same steps as the plain layer (each
band's step from the band's own level), so both give the same noise: only the bits differ.

Closed loop on train excerpts (the predictor sees the rebuilt low band, quantization noise included), the
lag searched over 2.5-20 ms per frame, one gain per band in {0, 1/4 .. 5/4} (``--frame-gain``: one for the
whole frame, 3 bits in place of 3 per band). Bits are the empirical entropy
of the quantized coefficients, pooled over the excerpts (the same kind of static model for both, fitted to
each's own coefficients), plus side information: the lag (8 bits, or 3 bits for a refinement around the
pitch the neural layer already sends) and 3 bits of gain per band. Prints the prediction gain and the bits
per frame both ways."""
from __future__ import annotations

import argparse

import numpy as np

from audiocodec.stream import modes
from audiocodec.stream.lowband import BAND, HOP, S_MIN, LowBand
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts

GAINS = np.arange(6) / 4.0
LAGS = np.arange(40, 321)  # 2.5 - 20 ms at 16 kHz


def entropy_bits(q: np.ndarray) -> float:
    """Total bits of integers ``q`` under their own empirical distribution."""
    _, counts = np.unique(q, return_counts=True)
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def run_clip(layer: LowBand, x: np.ndarray, frame_gain: bool = False) -> dict:
    target = layer.mdct(x.astype(np.float64))
    frames = len(target)
    recon = np.zeros((frames + 2) * HOP)  # rebuilt low band, padded as ``imdct`` pads (sample n at n + HOP)
    n = np.arange(2 * HOP)
    back = LAGS[:, None] * np.ceil((n[None] + 1) / LAGS[:, None]).astype(int)  # (lags, 2 HOP)
    q_plain, q_ltp, e_target, e_resid, used = [], [], 0.0, 0.0, 0
    for j in range(frames):
        c = target[j]
        scales, q = layer.quantize(c[None])
        step = np.repeat(layer.steps(scales), BAND, axis=1)[0]
        live = np.repeat(scales[0] > S_MIN, BAND)
        q_plain.append(q[0][live])
        # the prediction: the rebuilt signal before the window's start, repeated with period L
        start = j * HOP
        src = start + n[None] - back
        p = np.where(src >= 0, recon[np.maximum(src, 0)], 0.0) @ layer.basis  # (lags, coefs)
        cb, pb = c.reshape(layer.bands, BAND), p.reshape(len(LAGS), layer.bands, BAND)
        # per lag and band the best gain of GAINS; per lag the residual energy; pick the lag
        resid = ((cb[None, None] - GAINS[None, :, None, None] * pb[:, None]) ** 2).sum(-1)  # (lags, gains, bands)
        if frame_gain:  # one gain for every band: the best for the band sum
            best_g = np.repeat(resid.sum(2).argmin(1)[:, None], layer.bands, 1)
        else:
            best_g = resid.argmin(1)  # (lags, bands)
        total = np.take_along_axis(resid, best_g[:, None], 1)[:, 0].sum(1)
        li = int(total.argmin())
        g = np.repeat(GAINS[best_g[li]], BAND)
        r = c - g * p[li]
        qr = np.clip(np.round(r / step), -1023, 1023).astype(np.int32)
        qr[~live] = 0
        q_ltp.append(qr[live])
        e_target += float((c ** 2).sum())
        e_resid += float((r ** 2).sum())
        used += int((g > 0).any())
        rebuilt = g * p[li] + layer.dequantize(scales, qr[None])[0]
        recon[start:start + 2 * HOP] += rebuilt @ layer.basis.T
    return dict(q_plain=np.concatenate(q_plain), q_ltp=np.concatenate(q_ltp), frames=frames, e_target=e_target,
                e_resid=e_resid, used=used)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kbps", type=float, default=12.0, help="the hybrid mode whose low band is probed (6 or 12)")
    p.add_argument("--clips", type=int, default=30)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--frame-gain", action="store_true", help="one gain per frame instead of one per band")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    m = modes.mode(a.kbps, hybrid=True)
    layer = LowBand(m.low_hz, m.low_snr_db)
    runs = [run_clip(layer, x, a.frame_gain) for x in excerpts(a.data, "train", a.clips, seconds=a.seconds)]
    frames = sum(r["frames"] for r in runs)
    plain = entropy_bits(np.concatenate([r["q_plain"] for r in runs])) / frames
    ltp = entropy_bits(np.concatenate([r["q_ltp"] for r in runs])) / frames
    gain_db = 10 * np.log10(sum(r["e_target"] for r in runs) / sum(r["e_resid"] for r in runs))
    used = sum(r["used"] for r in runs) / frames
    print(f"hybrid {a.kbps:g}: below {m.low_hz} Hz at {m.low_snr_db} dB, {len(runs)} excerpts, {frames} frames")
    print(f"prediction gain {gain_db:.2f} dB (energy of the coefficients over the residual's); "
          f"predicted in {100 * used:.0f} % of frames")
    gains = 3 if a.frame_gain else 3 * layer.bands
    side_full, side_refine = 8 + gains, 3 + gains
    print(f"coefficient bits per frame: plain {plain:.1f}, predicted {ltp:.1f} ({ltp - plain:+.1f}); with side "
          f"information {ltp + side_full:.1f} (lag sent) or {ltp + side_refine:.1f} (lag refined around the sent pitch)")


if __name__ == "__main__":
    main()
