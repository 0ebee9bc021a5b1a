"""How far a context model for the entropy coder can go: bits per code of the shipped model's codes
under fixed tables, count-based context models and a small neural model (issue 34's feasibility study).

    python research/entropy_codes.py --split test;  python research/entropy_codes.py --split train
    python research/entropy_context.py counts            # (a)-(c): seconds to minutes
    python research/entropy_context.py neural --minutes 15   # (d): trains on one thread, then measures
    python research/entropy_context.py breakdown         # (d) by source and by voicing
    python research/entropy_context.py report            # the tables of entropy_context.md

Codes come from ``entropy_codes.py`` (rows: pitch symbol, then the 24 RVQ stages). A stream of n_q rows
holds rows 0..n_q-1 when it sends the pitch (n_q >= 6), else rows 1..n_q, so a context may use only
those rows of the current and earlier frames. ``reset`` K: the context restarts every K frames from a
clip's start (a packet that must decode alone), 0: only at the clip's start."""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from audiocodec.stream.engine import load_engine
from audiocodec.evaluation.corpus import DEFAULT_ROOT
from audiocodec.stream.modes import modes

BITRATES = {m.kbps: m.rows for m in modes()}  # kbps -> rows of the neural-only modes

from entropy_counts import backoff, tune_betas  # noqa: E402  (a sibling module of this script)

RESETS = (0, 500, 5, 1)
START, RESET = 1024, 2047  # previous-frame context at a clip's first frame (training) and after a reset


def load_codes(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """-> (codes (rows, frames) int64, position of each frame in its clip (frames,))."""
    codes = np.load(os.path.join(folder, f"{split}.codes.npy")).astype(np.int64)
    offsets = np.load(os.path.join(folder, f"{split}.offsets.npy"))
    pos = np.arange(codes.shape[1]) - np.repeat(offsets[:-1], np.diff(offsets))
    return codes, pos


def stream_rows(n_q: int, sends_pitch: bool) -> list[int]:
    """Rows of the full codes that a stream of ``n_q`` rows holds."""
    return list(range(n_q)) if sends_pitch else list(range(1, n_q + 1))


def previous(codes: np.ndarray, pos: np.ndarray, row: int, reset: int, train: bool) -> np.ndarray:
    """The same row's code one frame earlier (frames,), START / RESET where the context restarts."""
    prev = np.concatenate([[0], codes[row, :-1]])
    prev = np.where(pos == 0, START if train else RESET, prev)
    return np.where((pos % reset == 0) & (pos > 0), RESET, prev) if reset else prev


def lower(codes: np.ndarray, row: int, pitch: bool) -> np.ndarray:
    """The code of the row below in the same frame (0 where there is none in the stream)."""
    if row == 0 or (row == 1 and not pitch):
        return np.zeros(codes.shape[1], dtype=np.int64)
    return codes[row - 1]


def contexts(codes, pos, row: int, pitch: bool, reset: int, train: bool) -> dict[str, list]:
    """Each count model's context chain (most general first) for ``row``."""
    p = previous(codes, pos, row, reset, train)
    lo = lower(codes, row, pitch)
    first = codes[1] if row >= 2 else lo
    return {"prev": [p], "lower": [lo], "stage1": [first],
            "prev+lower": [p, p * 2048 + lo],
            "lower+prev": [lo, lo * 2048 + p],
            "prev+lower+stage1": [p, p * 2048 + lo, (p * 2048 + lo) * 1024 + first]}


def count_bits(folder: str) -> dict:
    """Mean bits per code, {model: {"pitch"/"nopitch": {reset: [per row]}}} on the test codes."""
    train, tpos = load_codes(folder, "train")
    test, spos = load_codes(folder, "test")
    engine = load_engine()
    tables = engine.codec.row_tables(engine.codec.max_rows)
    rng = np.random.default_rng(0)
    held = _held_clips(tpos, rng)  # training clips held out to pick the smoothing
    out: dict = {"shipped": {}, "unigram": {}}
    rows = range(train.shape[0])
    shipped = [-np.log2(engine.entropy.probs[tables[r]][test[r]]).mean() for r in rows]
    unig = [-np.log2(backoff(train[r], [], test[r], [], [])).mean() for r in rows]
    for key in ("pitch", "nopitch"):
        out["shipped"][key] = {str(k): shipped for k in RESETS}
        out["unigram"][key] = {str(k): unig for k in RESETS}
    for key, pitch in (("pitch", True), ("nopitch", False)):
        for r in rows:
            if not pitch and r != 1:
                continue  # only stage 0's context changes without the pitch row
            tctx = contexts(train, tpos, r, pitch, 0, True)
            betas = {m: tune_betas(train[r], c, held) for m, c in tctx.items()}
            for k in RESETS:
                sctx = contexts(test, spos, r, pitch, k, False)
                for m, c in tctx.items():
                    bits = -np.log2(backoff(train[r], c, test[r], sctx[m], betas[m])).mean()
                    out.setdefault(m, {}).setdefault(key, {}).setdefault(str(k), []).append(float(bits))
            print(f"row {r:2d} ({key}): " + " ".join(f"{m} {out[m][key]['0'][-1]:.3f}" for m in tctx), flush=True)
    for m in out:  # nopitch: rows other than stage 0 as with the pitch
        if m in ("shipped", "unigram"):
            continue
        out[m]["nopitch"] = {k: [out[m]["pitch"][k][0], v[0]] + out[m]["pitch"][k][2:] for k, v in out[m]["nopitch"].items()}
    return out


def _held_clips(pos: np.ndarray, rng) -> np.ndarray:
    """Frames of a random tenth of the clips (bool, (frames,))."""
    clip = np.cumsum(pos == 0) - 1
    return (rng.random(clip[-1] + 1) < 0.1)[clip]


def per_bitrate(bits: dict, sends_pitch) -> dict:
    """{model: {reset: {kbps: (bits per frame, % saved against 10-bit codes)}}}."""
    res = {}
    for m, by in bits.items():
        for k in map(str, RESETS):
            for kbps, n_q in BITRATES.items():
                pitch = sends_pitch(n_q)
                row_bits = by["pitch" if pitch else "nopitch"][k]
                total = sum(row_bits[r] for r in stream_rows(n_q, pitch))
                res.setdefault(m, {}).setdefault(k, {})[f"{kbps:g}"] = (total, 100 * (1 - total / (10 * n_q)))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["counts", "neural", "breakdown", "report"])
    p.add_argument("--codes", default="/work/research34", help="folder of entropy_codes.py's .npy files")
    p.add_argument("--data", default=DEFAULT_ROOT, help="the speech corpus (breakdown: the clips' sources)")
    p.add_argument("--minutes", type=float, default=15.0, help="neural: training time on one thread")
    a = p.parse_args()
    if a.what == "counts":
        bits = count_bits(a.codes)
        with open(os.path.join(a.codes, "counts.json"), "w") as f:
            json.dump(bits, f)
    elif a.what == "neural":
        from entropy_neural import run
        run(a.codes, a.minutes)
    elif a.what == "breakdown":
        from entropy_neural import breakdown
        breakdown(a.codes, a.data)
    else:
        from entropy_report import report
        report(a.codes)


if __name__ == "__main__":
    main()
