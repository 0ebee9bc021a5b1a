"""Average the weights of training checkpoints of one lineage (a "model soup" / WiSE-FT interpolation).

    python scripts/average_checkpoints.py runs/enc/step4000.pt runs/enc3/ckpt.pt --out runs/soup/ckpt.pt
    python scripts/average_checkpoints.py A.pt B.pt --mix 0.7,0.3 --out runs/soup/ckpt.pt
    python scripts/export.py runs/soup/ckpt.pt --pitch runs/pitch_s/ckpt.pt     # ship it like any checkpoint

Two fine-tuning runs from the same weights often gain at different bitrates; the average of their weights can
keep both gains, since runs from one starting point stay in one basin of the loss. Only checkpoints of one
lineage may be averaged: the same architecture, and RVQ codebooks that were not refitted in between (a refit
renumbers the codes, and averaging code i of one run with code i of another would then mix unrelated vectors).

Each checkpoint contributes its weight average (``averaged``, what export.py ships) or, without one, its live
weights. Floating-point tensors are mixed; integer ones (counters) are taken from the last checkpoint. The
output is a checkpoint that export.py reads: the last input's config, settings and step, the mix as both its
live and averaged weights, and no optimizer state (it is not for resuming).
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

import torch


def weights(ck: dict) -> dict:
    return ck["averaged"] if "averaged" in ck else ck["model"]


def mix(checkpoints: list[dict], shares: list[float]) -> dict:
    """The shares-weighted average of the checkpoints' weights (state dicts with the same keys and shapes)."""
    first = weights(checkpoints[0])
    for ck in checkpoints[1:]:
        w = weights(ck)
        if w.keys() != first.keys() or any(w[k].shape != first[k].shape for k in w):
            raise ValueError("the checkpoints have different architectures")
    out = {}
    for k in first:
        if first[k].is_floating_point():
            out[k] = sum(s * weights(ck)[k].float() for ck, s in zip(checkpoints, shares)).to(first[k].dtype)
        else:
            out[k] = weights(checkpoints[-1])[k].clone()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="train.py checkpoints (.pt) of one lineage")
    p.add_argument("--mix", default=None, help="comma-separated shares, one per checkpoint (default: equal)")
    p.add_argument("--out", required=True, help="output checkpoint (.pt)")
    a = p.parse_args()
    if len(a.checkpoints) < 2:
        sys.exit("error: give at least two checkpoints")
    shares = [1.0 / len(a.checkpoints)] * len(a.checkpoints) if a.mix is None else [float(s) for s in a.mix.split(",")]
    if len(shares) != len(a.checkpoints) or abs(sum(shares) - 1.0) > 1e-6 or min(shares) < 0:
        sys.exit("error: --mix needs one non-negative share per checkpoint, summing to 1")
    try:
        cks = [torch.load(c, map_location="cpu", weights_only=False) for c in a.checkpoints]
        avg = mix(cks, shares)
    except (OSError, EOFError, pickle.UnpicklingError, RuntimeError, KeyError, ValueError) as e:
        sys.exit(f"error: {e}")
    last = cks[-1]
    out = {"model": avg, "averaged": avg, "config": last["config"], "settings": last.get("settings", {}),
           "step": last["step"], "mixed_from": list(zip(a.checkpoints, shares))}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save(out, a.out + ".tmp")
    os.replace(a.out + ".tmp", a.out)
    print(f"wrote {a.out}: " + " + ".join(f"{s:g} x {c}" for c, s in zip(a.checkpoints, shares)))


if __name__ == "__main__":
    main()
