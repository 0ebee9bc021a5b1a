"""What the entropy coder's context model learned, measured on given clips: bits per code by row of the
largest neural stream, with the per-stage tables, with the context model when it has no previous frame
(only the rows below in the same frame), and with the whole context. For the report and
``scripts/bench_entropy.py``."""
from __future__ import annotations

import numpy as np
import torch

from ..stream.modes import modes

LABELS = {"tables": "per-stage tables (format 3)", "start": "context, no previous frame",
          "context": "context (chunks and files)"}


def row_bits(engine, clips: list[np.ndarray], n_q: int) -> dict[str, np.ndarray]:
    """clips: codes (max_rows, frames) in context-row order -> bits per code by row of the ``n_q``-row stream
    for each of LABELS' keys."""
    ctx = engine.context
    rows = ctx.rows(n_q)
    tables = engine.codec.row_tables(n_q)
    frames = sum(c.shape[1] for c in clips)
    out = {k: np.zeros(n_q) for k in LABELS}
    for clip in clips:
        c = clip[rows].astype(np.int64)
        out["tables"] -= np.array([np.log2(engine.entropy.probs[t][row]).sum() for t, row in zip(tables, c)])
        out["context"] += ctx.bits(c) * c.shape[1]
        p = np.concatenate([ctx.probabilities(c[:, t:t + 1]) for t in range(c.shape[1])])  # every frame a start
        out["start"] -= np.log2(np.take_along_axis(p, c.T[..., None], 2)[..., 0]).sum(0)
    return {k: v / frames for k, v in out.items()}


def story(engine, wavs: list[np.ndarray]) -> dict | None:
    """Bits by row of the largest neural stream and bits per frame of every neural mode on ``wavs`` (16 kHz
    float arrays), each coded from its start as a file; None without a context model or per-stage tables."""
    if engine.context is None or engine.entropy is None:
        return None
    codec = engine.codec
    clips = []
    with torch.inference_mode():
        for w in wavs:
            c = codec.encode(torch.from_numpy(np.asarray(w, np.float32)), codec.max_rows)[0].numpy()
            clips.append(c if codec.sends_pitch(codec.max_rows) else np.concatenate([np.zeros_like(c[:1]), c]))
    per_mode = []
    for m in modes():
        b = row_bits(engine, clips, m.rows)
        per_mode.append({"kbps": m.kbps, "fixed": 10 * m.rows} | {k: float(v.sum()) for k, v in b.items()})
    top = max(modes(), key=lambda m: m.rows).rows
    by_row = {k: v.tolist() for k, v in row_bits(engine, clips, top).items()}
    return {"context_id": engine.context.id.hex(), "rows": top, "by_row": by_row, "modes": per_mode,
            "frames": int(sum(c.shape[1] for c in clips))}


def plot(result: dict, path: str) -> None:
    """Bits per code by row (``story``'s by_row), one line per coder, the fixed rate dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_row = result["by_row"]
    n = len(by_row["context"])
    fig, ax = plt.subplots(figsize=(9, 3.8))
    x = np.arange(n)
    for key, style in [("tables", "o-"), ("start", "s-"), ("context", "^-")]:
        ax.plot(x, by_row[key], style, ms=4, label=LABELS[key])
    ax.axhline(10, color="grey", lw=0.8, ls="--", label="fixed-rate (10 bits)")
    ax.set_xticks(x, ["pitch" if i == 0 else str(i - 1) for i in range(n)], fontsize=7)
    ax.set_xlabel(f"row of the {n}-row stream: the pitch symbol, then RVQ stage 0, 1, ...")
    ax.set_ylabel("bits per code")
    ax.set_title("What the context model knows: the rows below in the same frame, and the frames before")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
