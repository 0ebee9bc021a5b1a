"""Markdown tables of the entropy-context study from ``counts.json`` and ``neural.json`` (entropy_context.py)."""
from __future__ import annotations

import json
import os

from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import modes

BITRATES = {m.kbps: m.rows for m in modes()}  # kbps -> rows of the neural-only modes

from entropy_context import RESETS, per_bitrate  # noqa: E402

COUNT_MODELS = ("shipped", "unigram", "prev", "lower", "stage1", "prev+lower", "lower+prev", "prev+lower+stage1")
RESET_NAMES = {"0": "clip", "500": "500", "5": "5", "1": "1"}
LABELS = {"stage1": "stage-0 code", "prev+lower+stage1": "prev+lower+stage-0", "best": "best per row"}


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def neural_bitrate(neural: dict) -> dict:
    """{reset: {kbps: (bits per frame, % saved)}} of the neural model."""
    out = {}
    for k, by in neural["bits"].items():
        for kbps, bits in by.items():
            n_q = BITRATES[float(kbps)]
            out.setdefault(k, {})[kbps] = (sum(bits), 100 * (1 - sum(bits) / (10 * n_q)))
    return out


def best_per_row(counts: dict) -> dict:
    """Per row, stream kind and reset, the count model with the fewest bits (picked on the test codes: a
    little optimistic)."""
    models = [m for m in COUNT_MODELS if m in counts]
    return {key: {k: [min(counts[m][key][k][r] for m in models) for r in range(len(counts["shipped"][key][k]))]
                  for k in counts["shipped"][key]} for key in ("pitch", "nopitch")}


def report(folder: str) -> None:
    codec = load_engine().codec
    with open(os.path.join(folder, "counts.json")) as f:
        counts = json.load(f)
    path = os.path.join(folder, "neural.json")
    neural = json.load(open(path)) if os.path.exists(path) else None
    counts["best"] = best_per_row(counts)
    models = [m for m in COUNT_MODELS if m in counts] + ["best"]
    head = ["row"] + [LABELS.get(m, m) for m in models] + (["neural (12 kbps stream)"] if neural else [])
    rows = []
    for r in range(codec.max_rows):
        name = "pitch" if r == 0 else f"stage {r - 1}"
        cells = [f"{counts[m]['pitch']['0'][r]:.2f}" for m in models]
        if neural:
            nb = neural["bits"]["0"]["12"]
            cells.append(f"{nb[r]:.2f}" if r < len(nb) else "-")
        rows.append([name] + cells)
    print("Bits per code by row, test split, context over the whole clip:\n")
    print(table(head, rows))
    rate = per_bitrate(counts, codec.sends_pitch)
    nrate = neural_bitrate(neural) if neural else {}
    kbps = [f"{k:g}" for k in BITRATES]
    print("\nSaving against 10-bit codes by bitrate (bits per frame in brackets), context over the whole clip:\n")
    rows = [[LABELS.get(m, m)] + [f"{rate[m]['0'][k][1]:.1f} % ({rate[m]['0'][k][0]:.1f})" for k in kbps] for m in models]
    if neural:
        rows.append(["neural"] + [f"{nrate['0'][k][1]:.1f} % ({nrate['0'][k][0]:.1f})" for k in kbps])
    print(table(["model"] + [f"{k} kbps" for k in kbps], rows))
    print("\nSaving by packet length (context restarts every N frames; clip: only at the clip's start):\n")
    rows = []
    for m in ["best", "prev+lower"] + (["neural"] if neural else []):
        src = nrate if m == "neural" else rate.get(m)
        if src is None:
            continue
        for k in map(str, RESETS):
            rows.append([LABELS.get(m, m), RESET_NAMES[k]] + [f"{src[k][b][1]:.1f} %" for b in kbps])
    print(table(["model", "reset every"] + [f"{k} kbps" for k in kbps], rows))
    if neural:
        print(f"\nNeural model: {neural['params'] / 1e6:.2f} M parameters ({neural['params'] * 4 / 1e6:.1f} MB float32, "
              f"{neural['params'] / 1e6:.1f} MB int8), {neural['steps']} steps in {neural['minutes']:g} min.\n")
        rows = [[k] + [f"{neural['timing'][k][f]:.3f}" for f in ("encoder_ms", "decoder_ms", "range_coder_ms")]
                + [f"{neural['timing'][k]['bits_per_code_coded']:.2f}"] for k in kbps]
        print(table(["kbps", "encoder ms/frame", "decoder ms/frame", "range coder ms/frame", "coded bits/code (300 frames)"], rows))
