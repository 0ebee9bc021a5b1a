"""Is it the bits or the autoencoder? How much of the latent each bitrate's codes keep, and what the decoder
makes of them, up to the latent itself, unquantized.

    python research/probe_rvq.py [--clips 60] [--model W] [--out reports/probe_rvq.md]

On the benchmark's fixed test clips, for the streams of 1.5, 3, 6 and 12 kbps (3, 5, 11 and 23 RVQ stages;
from 3 kbps up one row of the codes is the pitch) and for the encoder's latent itself (the spectral branch's
part included, as the stages after it see it), with the sent pitch where the stream has one:

- the energy of the latent that the stages leave out (the RVQ residual), as a share of the latent's energy;
- PESQ-WB of the decoded audio (the model's own decode path; no bitstream, so no range coder).

If 12 kbps and the unquantized latent score no better than 6 kbps, more bits cannot help: only a better
encoder (what the latent holds) or decoder (what it makes of it) can.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.evaluation.metrics import pesq_wb
from audiocodec.evaluation.runner import REPORTED_CLIPS, fixed_test_clips
from audiocodec.model.codec import Codec, default_weights_path
from audiocodec.model.pitch import dequantize
from oracles import write_report

ROWS = {"1.5 kbps": 3, "3 kbps": 6, "6 kbps": 12, "12 kbps": 24}  # rows of codes per stream


@torch.no_grad()
def probe(model: Codec, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """One clip -> {stream: (residual energy / latent energy, PESQ-WB)}."""
    wav = model.as_batch(torch.from_numpy(x))  # whole frames, as Codec.encode pads them
    z, late = model.encoder.parts(wav)
    full = z if late is None else z + late
    out = {}
    for name, rows in ROWS.items():
        codes = model.encode(wav, rows)
        stages = model.split(codes)[1]
        target = full if stages.shape[1] > model.quantizer.join else z  # the branch joins before stage `join`
        residual = (target - model.quantizer.decode(stages)).pow(2).sum() / target.pow(2).sum()
        y = model.decode(codes)[0, 0, :len(x)].numpy()
        out[name] = (float(residual), pesq_wb(x, y))
    f0 = dequantize(model.pitch_symbols(wav)) if model.pitch is not None else None
    y = model.synthesize(model.features(full, f0), f0)[0][0, 0, :len(x)].numpy()
    out["the latent, unquantized"] = (0.0, pesq_wb(x, y))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=REPORTED_CLIPS)
    p.add_argument("--model", default=None, help="weights (default: the shipped model)")
    p.add_argument("--out", default="reports/probe_rvq.md")
    a = p.parse_args()
    torch.set_num_threads(1)
    model = Codec.load(a.model or default_weights_path()).eval()
    results = [probe(model, load(path)) for path in tqdm(fixed_test_clips(a.clips), desc="clips")]
    base = np.array([r["6 kbps"][1] for r in results])
    lines = [f"# Bits or autoencoder? ({len(results)} fixed test clips, model `{model.model_id}`)", "",
             "| stream | latent energy the codes leave out | PESQ-WB | change against 6 kbps, clip by clip |",
             "|---|---:|---:|---:|"]
    for name in results[0]:
        res, score = (np.array([r[name][i] for r in results]) for i in (0, 1))
        d = score - base
        ok = np.isfinite(d)
        lines.append(f"| {name} | {100 * res.mean():.2f} % | {np.nanmean(score):.3f} | "
                     f"{d[ok].mean():+.3f} ± {d[ok].std(ddof=1) / np.sqrt(ok.sum()):.3f} |")
    write_report(a.out, lines)


if __name__ == "__main__":
    main()
