"""Is the decoder's hedged voicing a knob? Output-side probes and the low band's periodicity.

    python research/probe_voicing.py [--clips 24] [--model W]     # W: .safetensors, or a run's .pt (its average)

On the first 4 s of ``--clips`` excerpts of the train split (``dataset.excerpts``), at 1.5 and 6 kbps:

1. PESQ-WB of the decoder as it is, and paired differences (± standard error) when its output is changed
   without training: every voicing logit scaled (sharper voicing), the voicing logits below 1 kHz raised,
   and a 2:1 downward expander on frames 40 dB below the output's peak (quieter pauses);
2. the periodicity of the band below 1 kHz (``periodicity.Periodicity``) of the input and of the
   decoded output on the frames the pitch tracker (WORLD Harvest, ``[train]`` extra) calls voiced, by pitch.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, pitch_targets, track_f0
from periodicity import Periodicity
from audiocodec.model.codec import Codec, default_weights_path

PROBES = {"as it is": (1.0, 0.0, False), "voicing logits x 1.5": (1.5, 0.0, False), "voicing logits x 2": (2.0, 0.0, False),
          "voicing logits + 1 below 1 kHz": (1.0, 1.0, False), "2:1 expander 40 dB below the peak": (1.0, 0.0, True)}
PITCH_RANGES = {"60-140 Hz": (0, 140), "140-220 Hz": (140, 220), "220-500 Hz": (220, 1e9)}


def load_model(path: str) -> Codec:
    if not path.endswith(".pt"):
        return Codec.load(path)
    return Codec.from_checkpoint(torch.load(path, map_location="cpu", weights_only=False))


def expand(y: np.ndarray, below_db: float = 40.0, frame: int = 320) -> np.ndarray:
    """2:1 downward expansion of 20 ms frames quieter than the output's loudest frame by ``below_db``."""
    m = len(y) // frame
    level = 10 * np.log10(np.mean(y[:m * frame].reshape(m, frame) ** 2, 1) + 1e-10)
    gain = np.repeat(10 ** (-np.maximum(0.0, level.max() - below_db - level) / 20), frame)
    gain = np.convolve(np.pad(gain, (79, 0), mode="edge"), np.ones(80) / 80, "valid")  # 5 ms smoothing
    out = y.copy()
    out[:len(gain)] *= gain
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--model", default=default_weights_path())
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    codec = load_model(a.model)
    source, controls = codec.source, codec.source.controls
    low = (torch.arange(codec.cfg.n_fft // 2 + 1) * codec.cfg.sample_rate / codec.cfg.n_fft < 1000).float()
    knob = {"scale": 1.0, "low": 0.0}

    def probed_controls(x):  # the same pitch, the voicing logits changed
        f0, voicing, per_bin = controls(x)
        if per_bin is not None:
            per_bin = per_bin * knob["scale"] + knob["low"] * low
        return f0, voicing * knob["scale"], per_bin

    source.controls = probed_controls
    periodicity = Periodicity()
    pesq = {}
    rho = {}
    for x in tqdm(excerpts(a.data, "train", a.clips), desc="clips"):
        x = x[: len(x) // 320 * 320]
        f0 = torch.from_numpy(pitch_targets(track_f0(x), np.array([0]), len(x))).float()
        rho_in = periodicity.periodicity(torch.from_numpy(x)[None], f0)[0]
        for kbps, n_q in ((1.5, 3), (6, 12)):
            codes = codec.encode(torch.from_numpy(x), n_q)
            for name, (scale, raise_low, expander) in PROBES.items():
                knob.update(scale=scale, low=raise_low)
                with torch.no_grad():
                    y = codec.decode(codes)[0, 0, : len(x)].numpy()
                if name == "as it is":
                    rho_out = periodicity.periodicity(torch.from_numpy(y)[None], f0)[0]
                    for rng, (lo, hi) in PITCH_RANGES.items():
                        m = (f0[0] >= lo) & (f0[0] < hi) & (f0[0] > 0)
                        rho.setdefault((kbps, rng), []).append((rho_in[m].numpy(), rho_out[m].numpy()))
                pesq.setdefault((kbps, name), []).append(pesq_wb(x, expand(y) if expander else y))

    print(f"\nmodel {os.path.basename(a.model)}, {a.clips} excerpts of the train split\n")
    print("| probe | PESQ-WB 1.5 kbps | PESQ-WB 6 kbps |\n|---|---|---|")
    for name in PROBES:
        cells = []
        for kbps in (1.5, 6):
            v, base = np.array(pesq[(kbps, name)]), np.array(pesq[(kbps, "as it is")])
            ok = np.isfinite(v) & np.isfinite(base)
            d = v[ok] - base[ok]
            cells.append(f"{v[ok].mean():.3f}" if name == "as it is" else f"{d.mean():+.3f} ± {d.std() / np.sqrt(ok.sum()):.3f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print("\n| tracker's pitch | voiced frames | periodicity below 1 kHz: input | decoded 1.5 kbps | decoded 6 kbps |\n|---|---|---|---|---|")
    for rng in PITCH_RANGES:
        cols = [np.concatenate([r[i] for r in rho[(kbps, rng)]]) for kbps in (1.5, 6) for i in (0, 1)]
        print(f"| {rng} | {len(cols[0])} | {cols[0].mean():.2f} | {cols[1].mean():.2f} | {cols[3].mean():.2f} |")


if __name__ == "__main__":
    main()
