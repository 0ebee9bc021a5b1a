"""A linear transform coder of the spectrum: how far PCA + residual VQ of the log-magnitude goes per bitrate.

    python research/linear_spectrum.py [--clips 8] [--fit-crops 300] [--out reports/linear_spectrum.md]

The codec's README compares it with a linear autoencoder of the *waveform* (audiocodec/evaluation/pca.py).
This is the stronger linear reference for the autoencoder: each 20 ms frame's log-magnitude
spectrum (two STFT frames of 640/160, ``oracles.log_pairs``, 642 numbers) is projected on its top 128
principal axes, those 128 numbers are coded by a residual VQ of full-dimension k-means codebooks (1024
entries each, the codec's 10 bits per stage and frame, so 3 / 6 / 12 / 24 stages are 1.5 / 3 / 6 / 12 kbps),
and the decoder maps the codes back through the axes and draws a waveform with Griffin-Lim phase (30
iterations, offline: not streamable as it is). Everything is fitted on random 4 s crops of the train split
and scored by PESQ-WB on the first 4 s of test clips, next to this codec (``--model``, default the shipped
weights) on the same clips at the same rates. About 6 minutes on one thread.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.stream.engine import load_engine
from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.model.quantizer import kmeans, nearest_euclidean
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, load_split
from oracles import from_pairs, griffin_lim, log_pairs, write_report

STAGES = {1.5: 3, 3.0: 6, 6.0: 12, 12.0: 24}


def fit(data: str, crops: int, components: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """-> (mean (642,), axes (642, components), codebooks: 24 of (1024, components)) from train crops."""
    audio, _ = load_split(data, "train", progress=False)
    rng = np.random.default_rng(seed)
    y = torch.cat([log_pairs(torch.from_numpy(audio[s:s + 64000].astype(np.float32) / 32768.0))
                   for s in rng.integers(0, len(audio) - 64000, crops)]).float()
    mean = y.mean(0)
    axes = torch.linalg.svd(y - mean, full_matrices=False)[2][:components].T
    r = (y - mean) @ axes
    gen = torch.Generator().manual_seed(seed)
    books = []
    for _ in tqdm(range(max(STAGES.values())), desc="k-means stages"):
        books.append(kmeans(r, 1024, iters=15, spherical=False, generator=gen))
        r = r - books[-1][nearest_euclidean(r, books[-1])]
    return mean, axes, books


def code(c: torch.Tensor, books: list[torch.Tensor]) -> torch.Tensor:
    """Coefficients (T, components) -> their reconstruction from ``len(books)`` residual stages."""
    out, r = torch.zeros_like(c), c.clone()
    for book in books:
        q = book[nearest_euclidean(r, book)]
        out, r = out + q, r - q
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--fit-crops", type=int, default=300, help="4 s train crops to fit the axes and codebooks on")
    p.add_argument("--components", type=int, default=128)
    p.add_argument("--model", default=None, help="weights of the codec to compare with (default: the shipped model)")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--out", default="reports/linear_spectrum.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    codec = load_engine(a.model).codec
    mean, axes, books = fit(a.data, a.fit_crops, a.components)
    linear: dict[str, list[float]] = {}
    neural: dict[str, list[float]] = {}
    for clip in tqdm(excerpts(a.data, "test", a.clips), desc="clips"):
        x = torch.from_numpy(clip)[:64000]
        c = (log_pairs(x).float() - mean) @ axes
        for kbps, n in [*STAGES.items(), (None, 0)]:
            rebuilt = (c if kbps is None else code(c, books[:n])) @ axes.T + mean
            y = griffin_lim(from_pairs(rebuilt.double(), len(x)), len(x), 30)
            name = f"{a.components} coefficients, unquantized" if kbps is None else f"{kbps:g} kbps ({n} stages)"
            linear.setdefault(name, []).append(pesq_wb(x.numpy(), y.numpy()))
            if kbps is not None:
                with torch.no_grad():
                    y = codec.decode(codec.encode(x, n))[0, 0, :len(x)]  # as a stream of n rows
                neural.setdefault(name, []).append(pesq_wb(x.numpy(), y.numpy()))
    lines = [f"# Linear transform coder of the log-magnitude spectrum ({a.clips} test clips, first 4 s)", "",
             f"PCA to {a.components} numbers per 20 ms, residual k-means 1024 x 24, Griffin-Lim phase (30); "
             f"the codec is `{codec.model_id}`.", "",
             "| code | linear, PESQ-WB | codec, PESQ-WB |", "|---|---:|---:|"]
    lines += [f"| {name} | {np.nanmean(v):.2f} | " + (f"{np.nanmean(neural[name]):.2f} |" if name in neural else "— |")
              for name, v in linear.items()]
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
