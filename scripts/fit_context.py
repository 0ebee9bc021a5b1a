"""Fit the entropy coder's context model for a codec's weights, check it, and ship it beside them.

    python scripts/fit_context.py                                   # the shipped weights, 50 minutes
    python scripts/fit_context.py --weights runs/x/model.safetensors --minutes 40 --cache /tmp/codes.npz
    python scripts/fit_context.py --searched 160 --cache /tmp/searched.npz  # the searched codes' model only

Encodes the train split at every row (each clip from its start, as a file would be; ``--cache`` keeps those
codes for the next run), trains the context model (``audiocodec/train/context.py``) for ``--minutes`` of wall
time on one thread, turns it into the integer network the coder runs, and writes
``<weights>.context.npz`` only if it round-trips every neural mode's codes. ``scripts/export.py`` runs the
same steps when it ships new weights. Prints the bits per code of each mode's stream (train clips).

``--searched CLIPS`` fits the model ``compress --search`` codes with instead (``Engine.searched``): the
installed context model with each row's frequencies flattened by the factor that codes the searched streams of
CLIPS random train clips (every searchable mode, ``--steps`` steps, the real encoder: about 12 minutes per mode
for 160 clips on one thread) in the fewest bits. It writes ``<weights>.searched.npz`` (the factors, a few
hundred bytes), and prints what the searched streams cost with either model.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from audiocodec.evaluation.corpus import DEFAULT_ROOT
from audiocodec.model import Codec, default_weights_path
from audiocodec.train.context import cached_split_codes, fit_for


def ship_context(codec: Codec, weights: str, data: str, minutes: float, cache: str | None = None) -> str:
    """Fit and check the context model of ``codec`` (loaded from ``weights``); write it beside the weights."""
    codes, offsets = cached_split_codes(codec, data, "train", cache)
    ctx, bits = fit_for(codec, codes, offsets, minutes)
    out = weights.replace(".safetensors", ".context.npz")
    ctx.save(out)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB, context model {ctx.id.hex()} for {codec.model_id})")
    for n_q, b in bits.items():
        print(f"{n_q:2d} rows: {b.sum():6.1f} bits per frame of {10 * n_q} fixed-rate "
              f"({100 * (1 - b.sum() / (10 * n_q)):.1f} % fewer); by row: {' '.join(f'{x:.2f}' for x in b)}")
    return out


def ship_searched(weights: str, data: str, clips: int, steps: int, cache: str | None = None) -> str:
    """Fit and write the searched codes' context model for the installed context model beside ``weights``."""
    from audiocodec.compress import FRAMES_PER_CHUNK
    from audiocodec.stream.engine import load_engine, save_searched
    from audiocodec.train.context import fit_searched, searched_split_codes

    engine = load_engine(weights)
    if engine.context is None:
        sys.exit(f"error: no context model beside {weights}: fit it first (without --searched)")
    sets = searched_split_codes(engine, data, "train", clips, steps, cache=cache)
    searched, bits = fit_searched(engine.context, sets, FRAMES_PER_CHUNK)
    out = weights.replace(".safetensors", ".searched.npz")
    save_searched(searched, engine.context, out)
    print(f"wrote {out} (context model {searched.id.hex()} for searched codes, from {engine.context.id.hex()})")
    for name, (before, after) in bits.items():
        print(f"{name} kbps searched: {before:6.1f} -> {after:6.1f} bits per frame "
              f"({100 * (1 - after / before):.1f} % fewer)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=default_weights_path(), help="the codec's .safetensors (default: shipped)")
    p.add_argument("--minutes", type=float, default=50.0, help="training time (wall clock, one thread)")
    p.add_argument("--data", default=DEFAULT_ROOT, help="the speech corpus (its train split is used)")
    p.add_argument("--cache", default=None, metavar="NPZ", help="keep (or reuse) the train split's codes here")
    p.add_argument("--searched", type=int, default=0, metavar="CLIPS",
                   help="fit the searched codes' model on this many train clips instead (see above)")
    p.add_argument("--steps", type=int, default=30, help="with --searched: the search's steps (compress --search)")
    a = p.parse_args()
    torch.set_num_threads(1)
    if a.searched:
        ship_searched(a.weights, a.data, a.searched, a.steps, a.cache)
        return
    ship_context(Codec.load(a.weights), a.weights, a.data, a.minutes, a.cache)


if __name__ == "__main__":
    main()
