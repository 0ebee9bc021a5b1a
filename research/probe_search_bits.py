"""Where the searched codes' extra bits go (``compress --search``): per row, what the context model charges for
the encoder's codes and for the searched ones, and how many of each row's codes the search changed. Train
clips only.

    python research/probe_search_bits.py --kbps 6 --clips 8 --steps 30"""
from __future__ import annotations

import argparse
import glob
import os

import numpy as np
import torch

from audiocodec import audio
from audiocodec.compress import compress
from audiocodec.stream import search
from audiocodec.stream.engine import load_engine
from audiocodec.stream.frames import codes_of
from audiocodec.train.dataset import DEFAULT_ROOT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--hybrid", action="store_true")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine()
    pairs = []  # (the encoder's codes, the searched codes) of each chunk
    refine = search.CodeSearch.refine

    def recording(self, frames):
        out = refine(self, frames)
        pairs.append((codes_of(frames), codes_of(out)))
        return out

    search.CodeSearch.refine = recording
    files = sorted(glob.glob(os.path.join(a.data, "train", "**", "*.flac"), recursive=True))
    picks = np.random.default_rng(1).choice(len(files), a.clips, replace=False)
    plain, found = [], []
    for i in picks:
        x = audio.load(files[i])[:int(a.seconds * 16000)]
        pairs.clear()
        compress(x, a.kbps, engine, hybrid=a.hybrid, search=a.steps)
        plain.append(np.concatenate([c for c, _ in pairs], 1))
        found.append(np.concatenate([c for _, c in pairs], 1))
    frames = np.array([c.shape[1] for c in plain])
    bits = [np.average([engine.context.bits(c) for c in cs], 0, frames) for cs in (plain, found)]
    changed = np.average([(c != f).mean(1) for c, f in zip(plain, found)], 0, frames)
    print("row  encoder's bits  searched bits  codes changed")
    for r in range(len(changed)):
        print(f"{r:3d}  {bits[0][r]:14.2f}  {bits[1][r]:13.2f}  {changed[r]:12.0%}")
    print(f"all  {bits[0].sum() * 50 / 1000:10.2f} kbps  {bits[1].sum() * 50 / 1000:9.2f} kbps")


if __name__ == "__main__":
    main()
