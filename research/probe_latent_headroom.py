"""How much better could the decoder sound with a better latent? For each excerpt, the latent the 6 kbps codes
give is moved by gradient descent on the training losses (log-mel and compressed magnitude) with the decoder
frozen, and the result scored against the input. If a free latent lifts the judges far above the codes' own, a
richer latent (more bits spent on what the decoder reads) has room to win; if not, the decoder sets the ceiling.

    python research/probe_latent_headroom.py --clips 6 --steps 300        # train excerpts, one thread

Prints per excerpt PESQ-WB, STOI and the log-mel loss for the codes' latent and the optimised one, and how far the
latent moved (RMS, against the latent's own)."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from audiocodec.evaluation.metrics import pesq_wb, stoi
from audiocodec.model import load_default
from audiocodec.model.pitch import dequantize
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts
from audiocodec.train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rows", type=int, default=12, help="rows of codes (12: 6 kbps)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--through-codes", action="store_true", help="optimise what the codes of the moved latent decode to")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    codec = load_default()
    codec.requires_grad_(False)
    mel, cmag = MultiScaleMelLoss(), CompressedMagnitudeLoss()
    rows = []
    for i, x in enumerate(excerpts(a.data, "train", a.clips, seconds=3.0)):
        wav = codec.as_batch(torch.from_numpy(x))
        symbols, stages = codec.split(codec.encode(wav, a.rows))
        f0 = None if symbols is None else dequantize(symbols)
        z = codec.quantizer.decode(stages)
        delta = torch.zeros_like(z, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=a.lr)

        def decoded(d):
            return codec.synthesize(codec.features(z + d, f0), f0)[0]

        def as_codes(d):  # the moved latent as the stages code it, greedily, as they code the encoder's
            return codec.quantizer.decode(codec.quantizer.encode((z + d).detach(), stages.shape[1])) - z

        for _ in range(a.steps):
            # --through-codes: decode what the codes of the moved latent give, with its gradient straight through
            y = decoded(delta + (as_codes(delta) - delta).detach() if a.through_codes else delta)
            loss = 30 * mel(y, wav) + 150 * cmag(y, wav)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            ref = wav[0, 0].numpy()
            # the optimised latent as codes again: the stages quantize it greedily, as they do the encoder's
            requant = as_codes(delta)
            outs = [decoded(d)[0, 0].numpy() for d in (torch.zeros_like(z), delta, requant)]
            row = [pesq_wb(ref, y) for y in outs] + [stoi(ref, y) for y in outs] + \
                  [float(delta.pow(2).mean().sqrt() / z.pow(2).mean().sqrt())]
        rows.append(row)
        print(f"excerpt {i}: PESQ-WB {row[0]:.3f} -> {row[1]:.3f} (as codes {row[2]:.3f}), STOI {row[3]:.3f} -> "
              f"{row[4]:.3f} ({row[5]:.3f}), latent moved {row[6]:.1%}", flush=True)
    m = np.mean(rows, 0)
    print(f"mean of {len(rows)}, {a.rows} rows, {a.steps} steps: PESQ-WB {m[0]:.3f} -> {m[1]:.3f} (as codes {m[2]:.3f}), "
          f"STOI {m[3]:.3f} -> {m[4]:.3f} ({m[5]:.3f}), latent moved {m[6]:.1%}")


if __name__ == "__main__":
    main()
