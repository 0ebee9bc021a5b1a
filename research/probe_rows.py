"""How a neural mode scores with other row counts: the rate the context model left unused, spent on rows.

    python research/probe_rows.py --kbps 1.5 --rows 3,4,5 --clips 30
    python research/probe_rows.py --kbps 1.5 --rows 3,4,5 --pitch-from 4     # the pitch in the first row from 4 rows
    python research/probe_rows.py --kbps 1.5 --rows 4 --stream-vector 3      # the 3-row stream's context embedding

The mode of ``--kbps`` is re-tabled with each row count in turn and goes through the real ``compress`` /
``decompress`` with the shipped context model, on train excerpts (nothing chosen on test clips). Prints per row
count the actual kbps (payload, as ``benchmark.py`` counts it) and the panel (PESQ-WB, ViSQOL, STOI, ESTOI),
and each judge's change against the first row count, clip by clip (± standard error).

``--pitch-from N``: streams of N rows and more carry the sender's pitch (the shipped model: 6), on the codec and
the context model alike (a tracker with 20 ms lookahead: 70 ms latency instead of 50). ``--stream-vector K``:
code the streams with the context model's stream embedding of K rows (no pitch) in place of their own, which
the fit never trained for row counts that were no mode (its id changes, so only for measuring)."""
from __future__ import annotations

import argparse
import dataclasses

import torch
from sweep_hybrid import panel, report  # (a sibling module of this script)

from audiocodec.bitstream.context import ContextModel, Weights, stream_key
from audiocodec.evaluation import product
from audiocodec.evaluation.codecs import NeuralCodec
from audiocodec.stream import modes
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts


def borrowed_stream(ctx: ContextModel, rows: int, pitch: bool, source: int) -> ContextModel:
    """``ctx`` with the stream embedding of ``source`` rows (no pitch) in place of that of ``rows`` rows."""
    arrays = ctx.w.arrays()
    stream = arrays["stream"].copy()
    stream[stream_key(list(range(int(not pitch), rows + int(not pitch))), ctx.w.rows)] = stream[source]
    return ContextModel(Weights.from_arrays({**arrays, "stream": stream}), ctx.model_id, ctx.pitch_from)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kbps", type=float, default=1.5, help="the neural mode to re-table")
    p.add_argument("--rows", default="3,4,5", help="row counts, comma-separated (the first: the baseline)")
    p.add_argument("--clips", type=int, default=30)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--pitch-from", type=int, default=0, help="streams of this many rows and more send the pitch")
    p.add_argument("--stream-vector", type=int, default=0, metavar="K", help="code with the K-row stream's embedding")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    clips = excerpts(a.data, "train", a.clips, seconds=a.seconds)
    engine = product.engine(None)
    if a.pitch_from:
        engine.codec.cfg.pitch_from = engine.context.pitch_from = a.pitch_from
    shipped, context, first = modes.MODES, engine.context, None
    for rows in [int(v) for v in a.rows.split(",")]:
        modes.MODES = tuple(dataclasses.replace(m, rows=rows, fixed_rows=0) if not m.hybrid and m.kbps == a.kbps else m
                            for m in shipped)
        if a.stream_vector:
            engine.context = borrowed_stream(context, rows, engine.codec.sends_pitch(rows), a.stream_vector)
        rate, scores = panel(NeuralCodec(a.kbps), clips)
        pitch = " (pitch + stages)" if engine.codec.sends_pitch(rows) else ""
        report(f"{a.kbps:g} kbps as {rows} rows{pitch}:", rate, scores, first)
        first = scores if first is None else first
    modes.MODES, engine.context = shipped, context


if __name__ == "__main__":
    main()
