"""Where in time does the codec lose to Opus? PESQ-WB with the truth pasted into the quiet frames or the speech.

    python research/probe_quiet.py [--clips 60] [--kbps 6] [--model W] [--out reports/probe_quiet.md]

On the benchmark's fixed test clips, the neural codec and Opus at the same nominal bitrate (if opus-tools is
installed), each decoded through its real bitstream, then resynthesized from an STFT (640/160) that takes
some frames from the input and the rest from the codec:

- *quiet frames*: more than 35 dB below the clip's loudest (pauses, background noise, the quietest sounds),
  found on the input, eased over 50 ms (``oracles.quiet_frames``); and, not eased, split into those up to
  40 ms before a louder frame (onsets: pre-echo would show here), up to 40 ms after one and not before
  another (decays) and the rest (background);
- *speech*: every other frame.

and, in the quiet frames, only the truth below 1 kHz; the truth's magnitude with the codec's phase; the
codec's output with the truth's energy in each 100 Hz band below 1 kHz and each 10 ms frame.

Then three changes a decoder could make on its own, in the frames quiet *in its output*: its magnitude
with random phases, its magnitude times complex Gaussian noise (a noise fill), and 3 dB quieter.
Each row: mean PESQ-WB, and the change against the codec as it is, clip by clip (mean ± standard error).
Two more tables: PESQ's two disturbances, as the differentiable approximation ``perceptual_losses.PesqLoss`` computes
them (symmetric, and asymmetric: energy the output adds), for each codec as it is and with the truth in
its quiet frames; and each codec's level error in its quiet frames, band by band: the mean (bias) and the
spread from frame to frame (standard deviation) of output minus input, in dB.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.evaluation.baselines import OpusCodec, opus_available
from audiocodec.evaluation.codecs import NeuralCodec
from audiocodec.evaluation.metrics import common_delay, pesq_wb
from audiocodec.evaluation.runner import REPORTED_CLIPS, fixed_test_clips
from pesq_loss import PesqLoss
from oracles import BIN_HZ, paste, quiet_frames, stft, write_report


def near(mask: np.ndarray, steps: int, after: bool) -> np.ndarray:
    """Frames within ``steps`` frames before (``after`` False) or after a frame of ``mask``."""
    out = np.zeros_like(mask)
    for k in range(1, steps + 1):
        if after:
            out[k:] |= mask[:-k]
        else:
            out[:-k] |= mask[k:]
    return out


def pasted(true: torch.Tensor, out: torch.Tensor, hard: np.ndarray, length: int) -> dict[str, torch.Tensor]:
    """The codec's output (STFT ``out``) with the input's (``true``) pasted into some frames (see the module's
    doc); ``hard``: the input's quiet frames, not eased."""
    quiet = quiet_frames(true)
    loud = ~hard
    onset, decay = hard & near(loud, 4, False), hard & near(loud, 4, True) & ~near(loud, 4, False)
    parts = {"truth in the quiet frames": quiet, "truth in the speech frames": 1 - quiet,
             "truth in the quiet frames before an onset": torch.from_numpy(onset).float(),
             "truth in the quiet frames after a decay": torch.from_numpy(decay).float(),
             "truth in the other quiet frames (background)": torch.from_numpy(hard & ~onset & ~decay).float()}
    rows = {name: paste(true, out, m, length) for name, m in parts.items()}
    low = (BIN_HZ < 1000)[:, None]
    rows["truth in the quiet frames, below 1 kHz only"] = paste(torch.where(low, true, out), out, quiet, length)
    rows["the truth's magnitude in the quiet frames, own phase"] = paste(true.abs() * torch.sgn(out), out, quiet, length)
    rows["the truth's energy per 100 Hz and 10 ms below 1 kHz in the quiet frames"] = paste(
        out * band_gains(true, out, 4, 40), out, quiet, length)
    return rows


def band_gains(true: torch.Tensor, out: torch.Tensor, width: int, bins: int) -> torch.Tensor:
    """Per-bin gains (bins, frames) that give ``out`` the energy of ``true`` in each frame and each band of
    ``width`` bins among the first ``bins`` (1 above)."""
    gain = torch.ones(out.shape)
    for lo in range(0, bins, width):
        e_true, e_out = (s[lo:lo + width].abs().square().sum(0) for s in (true, out))
        gain[lo:lo + width] = ((e_true + 1e-12) / (e_out + 1e-12)).sqrt()
    return gain


BAND_EDGES_HZ = (0, 250, 500, 1000, 2000, 4000, 8000.1)


def band_errors(true: torch.Tensor, out: torch.Tensor, hard: np.ndarray) -> np.ndarray:
    """Output minus input level (dB) in each band of BAND_EDGES_HZ, from the two STFTs, on the input's quiet
    frames ``hard``: (bands, frames)."""
    bands = [(BIN_HZ >= lo) & (BIN_HZ < hi) for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])]
    db = lambda spec: 10 * torch.log10(torch.stack([spec[b].abs().square().sum(0) for b in bands]) + 1e-10)
    return (db(out) - db(true))[:, torch.from_numpy(hard)].numpy()


def own_changes(out: torch.Tensor, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Changes in the frames quiet in the codec's own output (STFT ``out``; what a decoder could do without
    the input)."""
    quiet = quiet_frames(out)
    g = torch.Generator().manual_seed(seed)
    phases = torch.exp(2j * np.pi * torch.rand(out.shape, generator=g))
    noise = torch.complex(torch.randn(out.shape, generator=g), torch.randn(out.shape, generator=g)) / np.sqrt(2)
    changed = {"own quiet frames: random phases": out.abs() * phases, "own quiet frames: noise fill": out.abs() * noise,
               "own quiet frames: 3 dB quieter": out * 10 ** (-3 / 20)}
    return {name: paste(c, out, quiet, length) for name, c in changed.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=REPORTED_CLIPS)
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--out", default="reports/probe_quiet.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    codecs = {f"audiocodec {a.kbps:g}": NeuralCodec(a.kbps, a.model)}
    if opus_available():
        codecs[f"Opus {a.kbps:g}"] = OpusCodec(a.kbps)
    inputs = [load(path) for path in fixed_test_clips(a.clips)]
    scores: dict[str, dict[str, list[float]]] = {name: {} for name in codecs}
    levels: dict[str, list[np.ndarray]] = {name: [] for name in codecs}
    terms: dict[str, list[list[float]]] = {name: [] for name in codecs}
    approx = PesqLoss()
    for name, codec in codecs.items():
        decoded = [codec.run(x).decoded for x in tqdm(inputs, desc=name)]
        lag = codec.delay if codec.delay is not None else common_delay(list(zip(inputs[:5], decoded[:5])))
        for x, y in tqdm(list(zip(inputs, decoded)), desc="PESQ"):
            x, y = torch.from_numpy(x), torch.from_numpy(np.concatenate([y[lag:], np.zeros(lag, np.float32)]))
            true, out = stft(x), stft(y)
            hard = quiet_frames(true, ease=False).numpy() > 0
            levels[name].append(band_errors(true, out, hard))
            variants = {"as it is": y, **pasted(true, out, hard, len(x)),
                        **(own_changes(out, len(y)) if codec.family == "neural" else {})}
            with torch.no_grad():
                terms[name].append([float(t) for z in (y, variants["truth in the quiet frames"])
                                    for t in approx.terms(z[None, None], x[None, None])])
            for row, z in variants.items():
                scores[name].setdefault(row, []).append(pesq_wb(x.numpy(), z.numpy()))
    lines = [f"# Where in time the codec loses PESQ-WB ({len(inputs)} fixed test clips, {a.kbps:g} kbps)", ""]
    for name, rows in scores.items():
        base = np.array(rows["as it is"])
        lines += [f"## {name}", "", "| resynthesis (STFT 640/160) | PESQ-WB | change, clip by clip |", "|---|---:|---:|"]
        for row, v in rows.items():
            d = np.array(v) - base
            d = d[~np.isnan(d)]
            lines.append(f"| {row} | {np.nanmean(v):.3f} | {d.mean():+.3f} ± {d.std() / np.sqrt(len(d)):.3f} |")
        lines.append("")
    lines += ["## PESQ's two disturbances (perceptual_losses.PesqLoss, no time alignment; the score falls as they grow)", "",
              "| codec | symmetric, as it is | asymmetric, as it is | symmetric, truth in the quiet frames | asymmetric, truth in the quiet frames |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in np.mean(t, 0)) + " |" for name, t in terms.items()]
    lines.append("")
    bands = [f"{lo / 1000:g}-{round(hi / 1000, 2):g} kHz" for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])]
    lines += ["## Level error in the quiet frames, output minus input (dB): mean / spread from frame to frame", "",
              "| codec | " + " | ".join(bands) + " |", "|---|" + "---:|" * len(bands)]
    for name, parts in levels.items():
        e = np.concatenate(parts, 1)
        lines.append(f"| {name} | " + " | ".join(f"{m:+.1f} / {sd:.1f}" for m, sd in zip(e.mean(1), e.std(1))) + " |")
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
