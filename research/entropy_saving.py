"""How much the range coder saves over fixed 10-bit codes, per bitrate, on the test split.

    python research/entropy_saving.py [--clips 200] [--out reports/entropy_saving.md]

Sizes are whole .acdc files (header and chunk framing included), so the kbps are what a user gets.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.compress import compress
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import bitrates
from audiocodec.train.dataset import DEFAULT_ROOT, list_clips


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--out", default="reports/entropy_saving.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine()
    paths = list_clips(a.data, "test")
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(a.clips, len(paths))).astype(int)]
    wavs = [load(x) for x in paths]
    seconds = sum(len(w) for w in wavs) / 16000
    rows = []
    for kbps in tqdm(bitrates(), desc="bitrates"):
        ent = sum(len(compress(w, kbps, engine, entropy=True)) for w in wavs)
        fixed = sum(len(compress(w, kbps, engine, entropy=False)) for w in wavs)
        rows.append((kbps, 8 * fixed / seconds / 1000, 8 * ent / seconds / 1000, 100 * (1 - ent / fixed)))
    lines = [f"Entropy coding vs fixed 10-bit codes, {len(wavs)} test clips ({seconds / 60:.1f} min), model {engine.codec.model_id}:",
             "", "| mode | fixed-rate kbps | range-coded kbps | saving |", "|---|---:|---:|---:|"]
    lines += [f"| {k:g} kbps | {f:.2f} | {e:.2f} | {s:.1f} % |" for k, f, e, s in rows]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
