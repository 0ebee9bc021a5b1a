"""Fit the linear (PCA) baseline codec on the training split -> audiocodec/weights/pca.npz.

    python scripts/fit_pca.py                       # 100k random frames of the train split, seed 0
    python scripts/fit_pca.py --frames 20000 --out /tmp/pca.npz

The frames are a fixed random subset (``--seed``) of all 320-sample windows of the concatenated train
split (hop 160, sqrt-Hann), so the file is reproducible. See audiocodec/evaluation/pca.py for the codec."""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from audiocodec.evaluation import pca
from audiocodec.stream.modes import bitrates
from audiocodec.train.dataset import load_split


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000, help="random training frames to fit on (default 100000)")
    ap.add_argument("--components", type=int, default=160, help="principal components kept (default 160)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=pca.WEIGHTS)
    args = ap.parse_args()

    t0 = time.time()
    audio, _ = load_split(split="train")
    x = audio.astype(np.float32) / 32768.0
    rng = np.random.default_rng(args.seed)
    n_windows = (len(x) - pca.FRAME) // pca.HOP
    starts = np.sort(rng.choice(n_windows, size=min(args.frames, n_windows), replace=False)) * pca.HOP
    frames = x[starts[:, None] + np.arange(pca.FRAME)[None, :]] * pca.window().astype(np.float32)
    model = pca.fit(frames, n_components=args.components, seed=args.seed)
    model.save(args.out)

    energy = np.cumsum(model.variance) / model.variance.sum()
    print(f"fitted on {len(frames)} frames of {len(x) / 16000 / 3600:.1f} h of training audio in {time.time() - t0:.0f} s")
    for k in (8, 16, 32, 64, 128):
        print(f"  top {k:3d} components keep {100 * energy[k - 1]:.1f} % of the variance")
    for kbps in bitrates():
        bits = model.allocate(model.bits_per_hop(kbps))
        print(f"  {kbps:4g} kbps = {model.bits_per_hop(kbps)} bits/hop over {np.count_nonzero(bits)} components "
              f"(max {bits.max()} bits)")
    print(f"wrote {args.out} ({os.path.getsize(args.out) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
