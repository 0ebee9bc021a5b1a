"""Bits per code with the context model, against fixed 10-bit codes and the per-stage tables, on the test split.

    python scripts/bench_entropy.py [--clips 911] [--cache /tmp/test_codes.npz] [--out reports/entropy]

Encodes the test split's clips (speakers not in train) at every row, each clip from its start as a file
would be (``--cache`` keeps those codes), then for each neural mode (and the three stages 1.5 kbps sends
fixed-rate):
  fixed        10 bits per code (``--fixed-rate``)
  tables       the per-stage tables (what format version 3 coded with), their cross-entropy
  context      the context model as compress uses it: each clip a file, its bytes as coded (32-bit words
               included); decoded back and compared, code for code
  packets of N the context restarting every N frames, as a packet of N frames codes it (cross-entropy),
               for N = 5 and 1: what a packet of 100 ms or 20 ms can save without depending on the last one
               (N = 1: only the rows below in the same frame)
and the time to code and decode a frame with the context model on one thread. Writes results.md,
results.json and bits_by_row.png (bits per code by row, the 12 kbps stream: how much the rows below and the
previous frame tell) into --out; ``--figure`` also copies the plot to docs/figures/entropy_context.png.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.evaluation.corpus import DEFAULT_ROOT
from audiocodec.evaluation.entropy import plot, row_bits
from audiocodec.runtime import use_threads
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import modes
from audiocodec.train.context import cached_split_codes

FIGURE = os.path.join(os.path.dirname(__file__), "..", "docs", "figures", "entropy_context.png")


def context_bits(ctx, clips: list[np.ndarray], every: int | None) -> np.ndarray:
    """Cross-entropy by row with the context restarting at each clip's start and every ``every`` frames."""
    total, frames = 0.0, 0
    for clip in clips:
        step = every or clip.shape[1]
        for s in range(0, clip.shape[1], step):
            part = clip[:, s:s + step]
            total = total + ctx.bits(part) * part.shape[1]
            frames += part.shape[1]
    return total / frames


def coded(ctx, clips: list[np.ndarray]) -> tuple[float, float, float]:
    """Each clip coded as a file's chunk and decoded back -> (bits per frame as coded, encode ms per frame,
    decode ms per frame); AssertionError if any code comes back different."""
    size = enc = dec = 0.0
    frames = sum(c.shape[1] for c in clips)
    for clip in clips:
        t = time.perf_counter()
        data = ctx.encode(clip)
        enc += time.perf_counter() - t
        t = time.perf_counter()
        back = ctx.decode(data, len(clip), clip.shape[1])
        dec += time.perf_counter() - t
        assert np.array_equal(back, clip), "context coding did not round-trip"
        size += 8 * len(data)
    return size / frames, 1000 * enc / frames, 1000 * dec / frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=None, help="test clips (default: all 911)")
    p.add_argument("--packet-clips", type=int, default=200, help="clips for the packets-of-N figures")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--cache", default=None, metavar="NPZ", help="keep (or reuse) the test split's codes here")
    p.add_argument("--out", default="reports/entropy")
    p.add_argument("--figure", action="store_true", help=f"also write {os.path.normpath(FIGURE)}")
    a = p.parse_args()
    use_threads(1)
    torch.set_num_threads(1)
    engine = load_engine()
    if engine.context is None:
        raise SystemExit("no context model is installed for the shipped weights (scripts/fit_context.py)")
    codes, offsets = cached_split_codes(engine.codec, a.data, "test", a.cache, a.clips)
    ctx = engine.context
    all_clips = [codes[:, s:e] for s, e in zip(offsets[:-1], offsets[1:])]
    results = []
    forms = [f for m in modes() for f in ([m, m.coded(context=False)] if m.fixed_rows else [m])]  # 1.5 kbps: 4, 3
    for m in tqdm(forms, desc="modes"):
        rows = ctx.rows(m.rows)
        clips = [c[rows].astype(np.int64) for c in all_clips]
        b = row_bits(engine, all_clips, m.rows)
        file_bits, enc_ms, dec_ms = coded(ctx, clips)
        per5 = context_bits(ctx, clips[:a.packet_clips], 5)
        fixed = 10 * m.rows
        form = "" if m in modes() else f" as {m.rows} stages (its fixed-rate form)"
        results.append(dict(kbps=m.kbps, rows=m.rows, form=form, fixed=fixed, tables=float(b["tables"].sum()), context=file_bits,
                            context_entropy=float(b["context"].sum()), packets_5=float(per5.sum()),
                            packets_1=float(b["start"].sum()), encode_ms=enc_ms, decode_ms=dec_ms,
                            by_row={k: v.tolist() for k, v in b.items()}))
    frames = int(offsets[-1])
    lines = [f"Context model {ctx.id.hex()} for model {engine.codec.model_id}: {len(offsets) - 1} test clips, "
             f"{frames} frames ({frames / 50 / 60:.1f} min); packets of 5 on the first {a.packet_clips} clips.", "",
             "Bits per frame (saving against fixed-rate):", "",
             "| mode | fixed | tables | context (files, as coded) | packets of 5 frames | packets of 1 frame |",
             "|---|---:|---:|---:|---:|---:|"]
    pct = lambda b, f: f"{b:.1f} ({100 * (1 - b / f):.1f} %)"  # noqa: E731
    for r in results:
        lines.append(f"| {r['kbps']:g} kbps{r['form']} | {r['fixed']} | {pct(r['tables'], r['fixed'])} | "
                     f"{pct(r['context'], r['fixed'])} | {pct(r['packets_5'], r['fixed'])} | "
                     f"{pct(r['packets_1'], r['fixed'])} |")
    lines += ["", "Context coding time, one thread, ms per 20 ms frame:", "", "| mode | encode | decode |",
              "|---|---:|---:|"]
    lines += [f"| {r['kbps']:g} kbps{r['form']} | {r['encode_ms']:.3f} | {r['decode_ms']:.3f} |" for r in results]
    top = results[-1]
    lines += ["", f"Bits per code by row, {top['kbps']:g} kbps stream (row 0 the pitch):", "",
              "| row | tables | context, no previous frame | context |", "|---|---:|---:|---:|"]
    lines += [f"| {'pitch' if i == 0 else f'stage {i - 1}'} | {t:.2f} | {s:.2f} | {c:.2f} |"
              for i, (t, s, c) in enumerate(zip(*(top["by_row"][k] for k in ("tables", "start", "context"))))]
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(dict(context_id=ctx.id.hex(), model=engine.codec.model_id, clips=len(offsets) - 1, frames=frames,
                       modes=results), f, indent=1)
    png = os.path.join(a.out, "bits_by_row.png")
    plot(top, png)
    if a.figure:
        shutil.copy(png, FIGURE)


if __name__ == "__main__":
    main()
