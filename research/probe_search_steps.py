"""How the search's step size and step count trade encoding time for quality (``compress --search``). Train
excerpts only, so nothing here is chosen on test clips.

    python research/probe_search_steps.py --clips 8 --kbps 6,12 --runs 30:0.05,30:0.1,60:0.05

Prints, per run (steps:learning rate) and bitrate, the mean training loss of the searched codes' audio and
its PESQ-WB and STOI, beside the encoder's own codes."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audiocodec.compress import compress, decompress
from audiocodec.evaluation.metrics import pesq_wb, stoi
from audiocodec.stream import modes, search
from audiocodec.stream.engine import load_engine
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts
from audiocodec.train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--kbps", default="6,12", help="bitrates")
    p.add_argument("--hybrid", action="store_true", help="their hybrid modes")
    p.add_argument("--runs", default="30:0.05,30:0.1", help="steps:learning rate, comma-separated")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine()
    modes.Mode.searchable = property(lambda m: True)  # every mode asked for, those compress refuses too (1.5 kbps)
    mel, cmag = MultiScaleMelLoss(), CompressedMagnitudeLoss()
    clips = excerpts(a.data, "train", a.clips, seconds=a.seconds)
    runs = [(0, 0.0)] + [(int(s), float(lr)) for s, lr in (r.split(":") for r in a.runs.split(","))]
    for kbps in (float(k) for k in a.kbps.split(",")):
        for steps, lr in runs:
            scores, t0 = [], time.perf_counter()
            search.search_codes.__defaults__ = (lr, None)  # the search's step size (lr, low)
            for x in clips:
                out = decompress(compress(x, kbps, engine, hybrid=a.hybrid, search=steps), engine)
                y, ref = torch.from_numpy(out)[None, None], torch.from_numpy(x)[None, None]
                loss = float(search.MEL * mel(y, ref) + search.CMAG * cmag(y, ref))
                scores.append((loss, pesq_wb(x, out), stoi(x, out)))
            m = np.nanmean(scores, 0)  # PESQ is undefined on an excerpt without speech
            print(f"kbps {kbps:4g}  steps {steps:3d}  lr {lr:.3f}  loss {m[0]:.3f}  PESQ-WB {m[1]:.3f}  STOI {m[2]:.4f}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
