"""Where the codec loses PESQ: magnitude or phase? Oracle resyntheses of test clips, scored by PESQ-WB.

    python scripts/oracles.py [--clips 8] [--kbps 6] [--model W] [--out reports/oracles.md]

Each row rebuilds the first 4 s of each clip from an STFT (640-sample window, 160 hop: the decoder head's
own resolution) whose magnitude and phase come from different places:

- the codec's output as it is;
- the codec's output magnitude with Griffin-Lim phase (50 iterations from random phases): a better phase
  for the magnitude the decoder already makes;
- the *true* magnitude with random phase, and with Griffin-Lim phase (10 and 100 iterations): how far an
  exact magnitude goes once the phase is merely consistent (not the original waveform's).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from audiocodec.compress import load_engine, n_q_for  # noqa: E402
from audiocodec.dataset import DEFAULT_ROOT, excerpts  # noqa: E402
from audiocodec.evaluation.metrics import pesq_wb  # noqa: E402

N_FFT, HOP = 640, 160


def stft(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)


def griffin_lim(mag: torch.Tensor, length: int, iters: int, seed: int = 0) -> torch.Tensor:
    """A signal whose STFT magnitude is close to ``mag``, from random phases refined ``iters`` times."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.exp(2j * np.pi * torch.rand(mag.shape, generator=g))
    for _ in range(iters):
        phase = torch.exp(1j * torch.angle(stft(istft(mag * phase, length))))
    return istft(mag * phase, length)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--out", default="reports/oracles.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine(a.model)
    n_q = n_q_for(a.kbps)
    rows: dict[str, list[float]] = {}
    for clip in tqdm(excerpts(a.data, "test", a.clips), desc="clips"):
        x = torch.from_numpy(clip)
        with torch.no_grad():
            y = engine.codec.decode(engine.codec.encode(x, n_q))[0, 0, :len(x)]
        true_mag, out_mag = stft(x).abs(), stft(y).abs()
        variants = {
            f"codec output ({a.kbps:g} kbps)": y,
            "codec magnitude + Griffin-Lim phase (50)": griffin_lim(out_mag, len(x), 50),
            "true magnitude + random phase": griffin_lim(true_mag, len(x), 0),
            "true magnitude + Griffin-Lim phase (10)": griffin_lim(true_mag, len(x), 10),
            "true magnitude + Griffin-Lim phase (100)": griffin_lim(true_mag, len(x), 100),
        }
        for name, z in variants.items():
            rows.setdefault(name, []).append(pesq_wb(x.numpy(), z.numpy()))
    lines = [f"# Oracles: magnitude or phase? ({a.clips} test clips, first 4 s, model `{engine.codec.model_id}`)", "",
             "| resynthesis (STFT 640/160) | PESQ-WB |", "|---|---:|"]
    lines += [f"| {name} | {np.nanmean(v):.2f} |" for name, v in rows.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
