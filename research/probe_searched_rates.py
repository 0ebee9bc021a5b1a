"""What the searched codes cost with the context model and with its tempered twin for searched codes, on the
same codes.

    python research/probe_searched_rates.py                    # the benchmark's 60 reported clips, every searchable mode
    python research/probe_searched_rates.py --modes 3,12 --steps 30

Each clip goes through the real ``compress --search STEPS`` (fixed-rate, so that the codes do not depend on
either model; the search never looks at bits) and the codes are read back; then each 500-frame chunk is coded
with each model, and the file's rule applies: a chunk goes context-coded only where that is smaller than
fixed-rate. Prints the payload kbps per mode (as ``benchmark.py``'s actual kbps, the low band left out: both
models leave it alone). The search is chaotic in its last bits (docs/training-log.md), so comparing the two
models in two benchmark runs would mix their difference with the search's own noise; here the codes are the same."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from audiocodec.audio import load
from audiocodec.bitstream.entropy import encode_fixed
from audiocodec.compress import FRAMES_PER_CHUNK
from audiocodec.evaluation.runner import REPORTED_CLIPS, fixed_test_clips
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import MODES
from audiocodec.train.context import searched_codes


def payload_bits(ctx, codes: np.ndarray, bits: int) -> int:
    """Bits of the chunks' payloads of ``codes`` (rows, frames) as a file codes them."""
    total = 0
    for s in range(0, codes.shape[1], FRAMES_PER_CHUNK):
        part = codes[:, s:s + FRAMES_PER_CHUNK].astype(np.int64)
        total += 8 * min(len(ctx.encode(part)), len(encode_fixed(part, bits)))
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default="3,6,12,6 hybrid,12 hybrid", help="searchable modes, comma-separated")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--clips", type=int, default=REPORTED_CLIPS, help="the first N of the benchmark's fixed clips")
    a = p.parse_args()
    torch.set_num_threads(1)
    engine = load_engine()
    if engine.searched is None:
        raise SystemExit("error: no searched codes' context model installed (scripts/fit_context.py --searched)")
    wavs = [load(c).astype(np.float32) for c in fixed_test_clips(REPORTED_CLIPS)[:a.clips]]
    seconds = sum(len(w) for w in wavs) / 16000
    print(f"| searched mode | kbps, context model {engine.context.id.hex()} | tempered {engine.searched.id.hex()} | "
          "saved | fixed-rate |\n|---|---:|---:|---:|---:|")
    for m in MODES:
        name = f"{m.kbps:g}" + (" hybrid" if m.hybrid else "")
        if not m.searchable or name not in a.modes.split(","):
            continue
        codes = [searched_codes(engine, w, m, a.steps) for w in wavs]
        before = sum(payload_bits(engine.context, c, 10) for c in codes) / seconds / 1000
        after = sum(payload_bits(engine.searched, c, 10) for c in codes) / seconds / 1000
        fixed = sum(c.size * 10 for c in codes) / seconds / 1000
        print(f"| {name} | {before:.2f} | {after:.2f} | {100 * (1 - after / before):.1f} % | {fixed:.2f} |", flush=True)


if __name__ == "__main__":
    main()
