"""What sending the pitch could buy, and how exact it must be (docs/training-log.md).

    python research/probe_pitch.py                     # the shipped model, 24 test excerpts of 4 s
    git show 462fc15:audiocodec/weights/default.safetensors > /tmp/older.safetensors
    python research/probe_pitch.py --model /tmp/older.safetensors   # a decoder from before it was tuned for the sent pitch

Two tables of PESQ-WB, decoding the same codes with different pitches driving the harmonic source
(``HarmonicSource``: where a pitch is given and voiced it replaces the decoder's own guess):

1. **A row for the pitch**: ``n`` RVQ stages with the decoder's own pitch, against ``n - 1`` stages plus
   WORLD Harvest's pitch as a stream would carry it (the 8-bit code, one per 20 ms, ``model/pitch.py``).
2. **How exact it must be** (all ``--rows`` stages): Harvest's pitch on time, 10 / 20 / 30 ms late, with
   one frame in ten an octave up, and with a random 3 % of an octave of jitter.
Needs ``pyworld`` (``pip install -e '.[train]'``).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.stream.engine import load_engine
from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.model.pitch import dequantize, frame_symbols
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, pitch_targets, track_f0


def late(f0: torch.Tensor, frames: int) -> torch.Tensor:
    """The pitch ``frames`` x 10 ms late (unvoiced before it starts)."""
    return torch.cat([torch.zeros_like(f0[:, :frames]), f0[:, :f0.shape[1] - frames]], 1) if frames else f0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--rows", type=int, default=12, help="stages for the second table (12: 6 kbps)")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    codec = load_engine(a.model).codec
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {}

    def score(name: str, clip: np.ndarray, z_q: torch.Tensor, f0: torch.Tensor | None) -> None:
        """Decode quantized latents with ``f0`` as the sent pitch (None: the decoder's own)."""
        y = codec.synthesize(codec.features(z_q, f0), f0)[0][0, 0, :len(clip)].numpy()
        scores.setdefault(name, []).append(pesq_wb(clip, y))

    for clip in tqdm(excerpts(a.data, "test", a.clips), desc="clips"):
        x = codec.as_batch(torch.from_numpy(clip))
        with torch.no_grad():
            z, extra = codec.encoder.parts(x)
            harvest = torch.from_numpy(pitch_targets(track_f0(clip).astype(np.float32), np.zeros(1, dtype=np.int64), x.shape[-1]))
            sent = dequantize(frame_symbols(harvest))
            z_q = {n: codec.quantizer.decode(codec.quantizer.encode(z, n, extra))
                   for n in sorted({2, 3, 5, 6, 11, 12, 23, 24, a.rows})}
            for n in (3, 6, 12, 24):
                score(f"{n} | {n} stages, own pitch", clip, z_q[n], None)
                score(f"{n} | {n - 1} stages + sent pitch", clip, z_q[n - 1], sent)
            f = z_q[a.rows]
            score("own pitch", clip, f, None)
            score("Harvest's, every 10 ms", clip, f, harvest)
            score("Harvest's through the 8-bit code, every 20 ms", clip, f, sent)
            for k in (1, 2, 3):
                score(f"Harvest's, {10 * k} ms late", clip, f, late(harvest, k))
            octave = torch.from_numpy(np.where(rng.random(harvest.shape) < 0.1, 2.0, 1.0).astype(np.float32))
            score("Harvest's, one frame in ten an octave up", clip, f, harvest * octave)
            jitter = torch.from_numpy(2.0 ** rng.normal(0.0, 0.03, harvest.shape).astype(np.float32))
            score("Harvest's with 3 % of an octave of random jitter", clip, f, harvest * jitter)
    mean = {k: float(np.nanmean(v)) for k, v in scores.items()}
    print(f"model {codec.model_id}, {a.clips} test excerpts of 4 s, PESQ-WB\n")
    print("| rows | decoded with | PESQ-WB |\n|---|---|---:|")
    for k, v in mean.items():
        if "|" in k:
            print(f"| {k} | {v:.3f} |")
    print(f"\n| pitch driving the source ({a.rows} stages) | PESQ-WB |\n|---|---:|")
    for k, v in mean.items():
        if "|" not in k:
            print(f"| {k} | {v:.3f} |")


if __name__ == "__main__":
    main()
