"""How the hybrid modes were chosen: the low band's cutoff and SNR against the bits they cost.

    python research/sweep_lowband.py [--clips 60] [--neural 1.5,3,6] [--out reports/sweep_lowband.md]

On the benchmark's fixed test clips, the neural codec at each bitrate of ``--neural`` through its real
bitstream, then the input's band below each cutoff sent by the waveform layer (``audiocodec/lowband.py``:
MDCT, range-coded) at each SNR, replacing the neural output's low band. Per setting: the low band's and the
total payload kbps (range-coded bytes / seconds, no container framing) and mean PESQ-WB. The hybrid modes
(``HYBRID_MODES``) are the settings with the most PESQ-WB within 6 and 12 kbps in all; check
them on held-out clips with ``benchmark.py --held-out 1 --clips 200 --bitrates 6 --against hybrid,opus``.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.evaluation.codecs import NeuralCodec
from audiocodec.evaluation.options import parse_list
from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.evaluation.runner import REPORTED_CLIPS, fixed_test_clips
from audiocodec.stream.lowband import LowBand, frames_for

CUTOFFS = (400, 600, 800, 1000, 1400, 2000)
SNRS = (6, 9, 12, 15)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=REPORTED_CLIPS)
    p.add_argument("--neural", default="1.5,3,6", help="neural bitrates under the low band (kbps)")
    p.add_argument("--cutoffs", default=",".join(map(str, CUTOFFS)), help="low-band cutoffs (Hz, multiples of 200)")
    p.add_argument("--snrs", default=",".join(map(str, SNRS)), help="low-band SNRs (dB)")
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--out", default="reports/sweep_lowband.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    clips = [load(path) for path in fixed_test_clips(a.clips)]
    seconds = sum(len(x) for x in clips) / 16000
    layers = [LowBand(c, s) for c in parse_list(a.cutoffs, "--cutoffs", cast=int) for s in parse_list(a.snrs, "--snrs", cast=float)]
    low = {}
    for layer in tqdm(layers, desc="low band"):  # the low band does not depend on the neural layer
        data = [layer.encode(x) for x in clips]
        low[layer] = (8 * sum(map(len, data)) / seconds / 1000,
                      [layer.decode_frames(d, frames_for(len(x))) for d, x in zip(data, clips)])
    lines = [f"# The low band's cutoff and SNR ({len(clips)} fixed test clips, {seconds:.0f} s)", "",
             "| neural kbps | low band | low-band kbps | total kbps | PESQ-WB |", "|---|---|---:|---:|---:|"]
    for kbps in parse_list(a.neural, "--neural", cast=float):
        codec = NeuralCodec(kbps, a.model)
        runs = [codec.run(x) for x in tqdm(clips, desc=f"neural {kbps:g}")]
        neural = 8 * sum(r.payload_bytes for r in runs) / seconds / 1000
        base = np.nanmean([pesq_wb(x, r.decoded) for x, r in zip(clips, runs)])
        lines.append(f"| {kbps:g} | none | 0 | {neural:.2f} | {base:.3f} |")
        for layer in tqdm(layers, desc="PESQ"):
            kb, sent = low[layer]
            score = np.nanmean([pesq_wb(x, layer.replace(r.decoded, c)) for x, r, c in zip(clips, runs, sent)])
            lines.append(f"| {kbps:g} | < {layer.cutoff_hz} Hz at {layer.snr_db:g} dB | {kb:.2f} | {neural + kb:.2f} | {score:.3f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
