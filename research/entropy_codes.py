"""Encode a split of the speech corpus at every row of the shipped model, for the entropy-context study.

    python research/entropy_codes.py --split train --out /work/research34

writes ``<out>/<split>.codes.npy`` (int16, (max_rows, frames): row 0 the pitch symbol, then the RVQ stages,
all clips concatenated) and ``<out>/<split>.offsets.npy`` (int64, the first frame of each clip, plus the
total). Clips are encoded one by one, each from its own start, as a file or a call would be. A stream of
``n_q`` rows is the first ``n_q`` rows of these (pitch included) when it sends the pitch, else rows
1..n_q; ``--check`` verifies that on a few clips."""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.stream.engine import load_engine
from audiocodec.evaluation.corpus import DEFAULT_ROOT, list_clips
from audiocodec.stream.modes import modes

BITRATES = {m.kbps: m.rows for m in modes()}  # kbps -> rows of the neural-only modes


def check_prefix(codec, wav: np.ndarray, full: np.ndarray) -> None:
    """Assert that each bitrate's codes are the matching rows of the full-row codes (max_rows, frames)."""
    for n_q in BITRATES.values():
        codes = codec.encode(torch.from_numpy(wav), n_q)[0].numpy()
        rows = full[:n_q] if codec.sends_pitch(n_q) else full[1:1 + n_q]
        assert (codes == rows).all(), f"{n_q} rows are not a prefix of the full codes"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", default="test")
    p.add_argument("--out", default="/work/research34")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--check", type=int, default=5, help="clips on which to check the prefix property")
    a = p.parse_args()
    torch.set_num_threads(1)
    codec = load_engine().codec
    assert codec.pitch is not None, "the study assumes a pitch-coded model"
    parts = []
    for i, path in enumerate(tqdm(list_clips(a.data, a.split), desc=f"encoding {a.split}")):
        wav = load(path).astype(np.float32)
        full = codec.encode(torch.from_numpy(wav), codec.max_rows)[0].numpy()
        if i < a.check:
            check_prefix(codec, wav, full)
        parts.append(full.astype(np.int16))
    offsets = np.cumsum([0] + [c.shape[1] for c in parts])
    os.makedirs(a.out, exist_ok=True)
    np.save(os.path.join(a.out, f"{a.split}.codes.npy"), np.concatenate(parts, 1))
    np.save(os.path.join(a.out, f"{a.split}.offsets.npy"), offsets)
    print(f"{a.split}: {len(parts)} clips, {offsets[-1]} frames, model {codec.model_id}")


if __name__ == "__main__":
    main()
