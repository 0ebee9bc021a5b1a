"""Which losses the search (``compress --search``) should minimise: the training losses alone, or with a term
that also asks for the waveform (phase), which the panel's judges hear and the higher bitrates have bits for.
Train excerpts only, so nothing here is chosen on test clips.

    python research/probe_search_loss.py --clips 12 --kbps 6,12 --runs 30:150:0,30:150:30,30:150:75

A run is ``plain`` (the encoder's codes, no search) or MEL:CMAG:COMPLEX, the weights of the log-mel loss, the compressed-magnitude loss (the search's own:
30 and 150) and an added term, the L1 distance of loudness-compressed complex STFTs, |S|^0.3 e^(i arg S), at
windows of 256 and 512 samples (magnitude and phase together). Prints, per run and bitrate, the panel
(PESQ-WB, ViSQOL, STOI, ESTOI) of the searched codes' audio, then each run's change against the first, clip
by clip (its mean, and the change ± standard error)."""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audiocodec.compress import compress, decompress
from audiocodec.evaluation.metrics import estoi, pesq_wb, stoi, visqol
from audiocodec.evaluation.tables import paired
from audiocodec.stream import modes, search
from audiocodec.stream.engine import load_engine
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts
from audiocodec.train.losses import CompressedMagnitudeLoss

RESOLUTIONS, POWER = (256, 512), 0.3


def complex_l1(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over RESOLUTIONS of L1(|S(x_hat)|^p e^(i arg), |S(x)|^p e^(i arg))."""
    x_hat, x = x_hat.flatten(0, 1), x.flatten(0, 1)
    loss = 0.0
    for n in RESOLUTIONS:
        win = torch.hann_window(n)
        a, b = (torch.stft(s, n, n // 4, window=win, return_complex=True) for s in (x_hat, x))
        ca, cb = (s * (s.abs() + 1e-7) ** (POWER - 1) for s in (a, b))
        loss = loss + (ca - cb).abs().mean()
    return loss / len(RESOLUTIONS)


def use_weights(mel: float, cmag: float, wave: float) -> None:
    """Make the search minimise mel * log-mel + cmag * compressed magnitude + wave * ``complex_l1``."""
    class Loss(CompressedMagnitudeLoss):
        def forward(self, x_hat, x):
            return cmag * super().forward(x_hat, x) + wave * complex_l1(x_hat, x)
    search.MEL, search.CMAG, search.CompressedMagnitudeLoss = mel, 1.0, Loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--kbps", default="6,12", help="bitrates")
    p.add_argument("--hybrid", action="store_true", help="their hybrid modes")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--runs", default="30:150:0,30:150:30,30:150:75,30:150:150", help="MEL:CMAG:COMPLEX weights, comma-separated")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine()
    modes.Mode.searchable = property(lambda m: True)  # 1.5 kbps too, which compress refuses
    clips = excerpts(a.data, "train", a.clips, seconds=a.seconds)
    weights = a.runs.split(",")
    judges = (("PESQ-WB", pesq_wb), ("ViSQOL", visqol), ("STOI", stoi), ("ESTOI", estoi))
    for kbps in (float(k) for k in a.kbps.split(",")):
        runs = {}
        for w in weights:
            t0 = time.perf_counter()
            steps = 0 if w == "plain" else a.steps
            if steps:
                use_weights(*(float(v) for v in w.split(":")))
            outs = [decompress(compress(x, kbps, engine, hybrid=a.hybrid, search=steps), engine) for x in clips]
            runs[w] = np.array([[f(x, y) for _, f in judges] for x, y in zip(clips, outs)])
            m = np.nanmean(runs[w], 0)
            line = "  ".join(f"{name} {v:.3f}" for (name, _), v in zip(judges, m))
            print(f"kbps {kbps:4g}{' hybrid' if a.hybrid else ''}  run {w}  {line}  ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        for w in weights[1:]:
            parts = [f"{name} {paired(runs[weights[0]][:, j], runs[w][:, j])}" for j, (name, _) in enumerate(judges)]
            print(f"kbps {kbps:4g}  {w} against {weights[0]}:  " + "  ".join(parts), flush=True)


if __name__ == "__main__":
    main()
