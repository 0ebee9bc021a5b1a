"""Late packets, delay and quality versus network jitter: fixed jitter buffers against the adaptive one.

    python scripts/bench_jitter.py --out reports/jitter [--clips 6] [--jitters 0,20,40,60,100]

Every point is a real run of ``audiocodec simulate``'s pipeline (streaming encoder -> packets -> relay on
127.0.0.1 -> jitter buffer -> decoder/concealment) on clips of the test split, on the stream's clock (the
relay delivers datagrams in the order real time would; no wall clock, so the run is quick and repeatable).
The relay delays each packet by 40 ms +- the jitter (uniform), so packets overtake each other; a frame
whose packet comes after its turn is concealed. Buffers compared:
  fixed 40 / fixed 80 / fixed 160 ms     the receiver's --buffer-ms
  adaptive                               --adaptive, starting at 40 ms
Reported per jitter: share of frames late, mean buffer depth (the delay it adds), PESQ-WB and STOI against
the input (the adaptive output put back on the stream's clock first: its stretches cut out, skips silenced).
Writes results.md, results.json and jitter.png into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.train.dataset import DEFAULT_ROOT
from audiocodec.stream.decoder import FrameDecoder
from audiocodec.stream.encoder import FrameEncoder
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import mode
from audiocodec.stream.quality import quality
from audiocodec.transport.simulate import run_simulation
from audiocodec.transport.link import NetworkModel
from bench_loss import pick_clips

BUFFERS = {"fixed 40 ms": (40, False), "fixed 80 ms": (80, False), "fixed 160 ms": (160, False),
           "adaptive (from 40 ms)": (40, True)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/jitter", help="output folder (default reports/jitter)")
    p.add_argument("--clips", type=int, default=6, help="test clips to use (default 6)")
    p.add_argument("--bitrate", type=float, default=6.0, help="kbps (default 6)")
    p.add_argument("--jitters", default="0,20,40,60,100", help="+- jitter in ms (default 0,20,40,60,100)")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    jitters = [float(x) for x in a.jitters.split(",")]
    codec, m = load_engine().codec, mode(a.bitrate)
    clips = pick_clips(a.data, a.clips)
    rows = {b: {j: [] for j in jitters} for b in BUFFERS}  # -> list of (late share, buffer ms, pesq, stoi)
    started = time.time()
    runs = [(ci, b, j) for ci in range(len(clips)) for b in BUFFERS for j in jitters]
    for ci, name, jitter in tqdm(runs, desc="runs", unit="run"):
        wav = clips[ci][1]
        buffer_ms, adaptive = BUFFERS[name]
        model = NetworkModel(delay_ms=40, jitter_ms=jitter, seed=1000 * ci + int(jitter))
        decoded, r = run_simulation(wav, FrameEncoder(codec, m), FrameDecoder(codec), model, buffer_ms=buffer_ms,
                                    adaptive=adaptive, timeout=1.0)
        st = r.stats
        depth = float(np.mean(st.buffer_ms_played)) if adaptive else st.buffer_ms
        q = quality(wav, decoded[: len(wav)])
        rows[name][jitter].append((st.late / max(1, st.packets_expected), depth, q["pesq_wb"], q["stoi"]))
    seconds = time.time() - started

    def mean(b, j, i):
        return float(np.mean([r[i] for r in rows[b][j]]))

    result = {"bitrate_kbps": a.bitrate, "clips": [c[0] for c in clips], "run_seconds": round(seconds, 1),
              "buffers": {b: {f"{j:g}": {"late": mean(b, j, 0), "buffer_ms": mean(b, j, 1), "pesq_wb": mean(b, j, 2),
                                         "stoi": mean(b, j, 3)} for j in jitters} for b in BUFFERS}}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, i, label in ((axes[0], 0, "frames late (%)"), (axes[1], 1, "mean buffer delay (ms)"),
                         (axes[2], 2, "PESQ-WB")):
        for b in BUFFERS:
            ys = [mean(b, j, i) * (100 if i == 0 else 1) for j in jitters]
            ax.plot(jitters, ys, marker="o", label=b, linestyle="-" if "adaptive" in b else "--")
        ax.set_xlabel("jitter, +- ms around 40 ms")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Jitter buffers at {a.bitrate:g} kbps, {len(clips)} test clips, 20 ms packets")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "jitter.png"), dpi=120)

    lines = [f"# Jitter buffers ({a.bitrate:g} kbps, one frame per packet)", "",
             f"{len(clips)} clips of the test split; mean over clips of: frames late, the buffer's mean depth, "
             f"PESQ-WB / STOI against the input. Measured with `python scripts/bench_jitter.py` in {seconds:.0f} s "
             f"(model {codec.model_id}).", "",
             "| jitter | " + " | ".join(f"{b}: late · depth · PESQ / STOI" for b in BUFFERS) + " |",
             "|---:|" + "---|" * len(BUFFERS)]
    for j in jitters:
        cells = [f"{100 * mean(b, j, 0):.1f}% · {mean(b, j, 1):.0f} ms · {mean(b, j, 2):.2f} / {mean(b, j, 3):.3f}"
                 for b in BUFFERS]
        lines.append(f"| ±{j:g} ms | " + " | ".join(cells) + " |")
    lines += ["", "![jitter](jitter.png)"]
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[4:]))
    print(f"wrote {a.out}/jitter.png, results.md, results.json")


if __name__ == "__main__":
    main()
