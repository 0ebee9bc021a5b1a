"""Quality versus packet loss: the codec over a lossy UDP link (with concealment) against Opus's own PLC.

    python scripts/bench_loss.py --out reports/loss [--clips 6] [--bitrate 6] [--losses 0,5,10,15,20,30]

Every point is a real run of ``audiocodec simulate``'s pipeline (streaming encoder -> packets -> relay on
127.0.0.1 -> jitter buffer -> decoder/concealment), on clips of the test split, scored with PESQ-WB (pesq)
and STOI (pystoi) against the input. Curves:
  codec, random loss      each packet lost independently (seeded)
  codec, bursty loss      Gilbert-Elliott, mean burst 3 packets (60 ms), same average loss
  codec, no concealment   random loss, lost frames replaced by the latent of silence (the baseline)
  hybrid, random loss     the hybrid mode at the same bitrate (6 or 12: send --hybrid), same losses and seeds
  Opus, random loss       opusenc at the same bitrate, 20 ms frames, hard CBR; opusdec --packet-loss (its PLC)
                          (only when opusenc/opusdec are installed; opusdec cannot simulate bursts)
Writes quality_vs_loss.png, results.md and results.json into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.audio import load
from audiocodec.output import save
from audiocodec.constants import SAMPLE_RATE
from audiocodec.evaluation.corpus import DEFAULT_ROOT, spread_clips
from audiocodec.evaluation.baselines import opus_available
from audiocodec.stream.decoder import FrameDecoder
from audiocodec.stream.encoder import FrameEncoder
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import bitrates, mode
from audiocodec.stream.quality import quality
from audiocodec.transport.simulate import run_simulation
from audiocodec.transport.link import NetworkModel

CURVES = {"random": "codec, random loss", "bursty": "codec, bursty loss (mean burst 3)",
          "mute": "codec, no concealment (random)", "hybrid": "hybrid, random loss", "opus": "Opus PLC, random loss"}


def opus_runs(wav: np.ndarray, kbps: float, losses: list[float], tmp: str) -> dict[float, np.ndarray]:
    src, enc = os.path.join(tmp, "in.wav"), os.path.join(tmp, "x.opus")
    save(src, wav)
    subprocess.run(["opusenc", "--quiet", "--bitrate", f"{kbps:g}", "--framesize", "20", "--hard-cbr", src, enc],
                   check=True, capture_output=True)
    out = {}
    for loss in losses:
        dst = os.path.join(tmp, f"out{loss:g}.wav")
        subprocess.run(["opusdec", "--quiet", "--rate", "16000", "--packet-loss", f"{100 * loss:g}", enc, dst],
                       check=True, capture_output=True)
        out[loss] = load(dst)[: len(wav)]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/loss", help="output folder (default reports/loss)")
    p.add_argument("--clips", type=int, default=6, help="test clips to use (default 6)")
    p.add_argument("--bitrate", type=float, default=6.0, help="kbps, for the codec and Opus (default 6)")
    p.add_argument("--losses", default="0,5,10,15,20,30", help="loss percentages (default 0,5,10,15,20,30)")
    p.add_argument("--frames-per-packet", type=int, default=1)
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    losses = [float(x) / 100 for x in a.losses.split(",")]
    codec = load_engine().codec
    modes = {"neural": mode(a.bitrate)}
    have_opus = opus_available()
    clips = spread_clips(a.data, a.clips)
    ours = ["random", "bursty", "mute"] + (["hybrid"] if a.bitrate in bitrates(hybrid=True) else [])
    curves = ours + (["opus"] if have_opus else [])
    if "hybrid" in ours:
        modes["hybrid"] = mode(a.bitrate, hybrid=True)
    # scores[curve][loss] -> list of (pesq, stoi, measured loss, concealed share) over clips
    scores = {c: {l: [] for l in losses} for c in curves}
    runs = [(ci, c, l) for ci in range(len(clips)) for c in ours for l in losses]
    started, timeouts, executed = time.time(), 0, 0
    for ci, curve, loss in tqdm(runs, desc="codec runs", unit="run"):
        wav = clips[ci][1]
        if loss == 0 and curve in ("bursty", "mute"):  # loss-free is the same run for these curves
            continue
        model = NetworkModel(loss=loss, burst=curve == "bursty", burst_len=3, seed=1000 * ci + int(1000 * loss))
        executed += 1
        encoder = FrameEncoder(codec, modes["hybrid" if curve == "hybrid" else "neural"])
        decoded, r = run_simulation(wav, encoder, FrameDecoder(codec, mute=curve == "mute"), model,
                                    a.frames_per_packet, timeout=1.0)
        if r.stats.ended_by != "end-of-stream":  # every end-of-stream copy lost: length known to the frame only
            timeouts += 1
        else:
            assert len(decoded) == len(wav)
        q = quality(wav, decoded)
        frames = r.stats.frames_decoded + r.stats.frames_concealed
        scores[curve][loss].append((q["pesq_wb"], q["stoi"], r.stats.loss_rate, r.stats.frames_concealed / frames))
    for c in ("bursty", "mute"):
        scores[c][0.0] = scores["random"][0.0] if 0.0 in losses else []
    if have_opus:
        with tempfile.TemporaryDirectory() as tmp:
            for _, wav in tqdm(clips, desc="opus", unit="clip"):
                for loss, y in opus_runs(wav, a.bitrate, losses, tmp).items():
                    q = quality(wav, y)
                    scores["opus"][loss].append((q["pesq_wb"], q["stoi"], loss, loss))
    seconds = time.time() - started

    def mean(curve, loss, i):
        vals = [s[i] for s in scores[curve][loss] if s[i] is not None]
        return float(np.mean(vals)) if vals else float("nan")

    result = {"bitrate_kbps": a.bitrate, "frames_per_packet": a.frames_per_packet, "clips": [c[0] for c in clips],
              "audio_seconds": sum(len(c[1]) for c in clips) / SAMPLE_RATE, "run_seconds": round(seconds, 1),
              "runs_ended_by_timeout": timeouts,
              "curves": {c: {f"{100 * l:g}": {"pesq_wb": mean(c, l, 0), "stoi": mean(c, l, 1),
                                              "measured_loss": mean(c, l, 2)} for l in losses} for c in curves}}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    pct = [100 * l for l in losses]
    for ax, i, name in ((axes[0], 0, "PESQ-WB"), (axes[1], 1, "STOI")):
        for c in curves:
            ax.plot(pct, [mean(c, l, i) for l in losses], marker="o", label=CURVES[c],
                    linestyle="--" if c in ("mute", "opus") else "-")
        ax.set_xlabel("packet loss (%)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Quality vs packet loss at {a.bitrate:g} kbps, {len(clips)} test clips "
                 f"({result['audio_seconds']:.0f} s), 20 ms packets")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "quality_vs_loss.png"), dpi=120)

    head = "| loss | " + " | ".join(f"{CURVES[c]} PESQ / STOI" for c in curves) + " |"
    lines = [f"# Quality vs packet loss ({a.bitrate:g} kbps, {a.frames_per_packet} frame(s) per packet)", "",
             f"{len(clips)} clips of the test split, {result['audio_seconds']:.1f} s of speech; PESQ-WB and STOI "
             f"against the input, mean over clips. Measured with `python scripts/bench_loss.py` in {seconds:.0f} s "
             f"(model {codec.model_id}).", "", head, "|---:|" + "---|" * len(curves)]
    for l in losses:
        cells = [f"{mean(c, l, 0):.2f} / {mean(c, l, 1):.3f}" for c in curves]
        lines.append(f"| {100 * l:g}% | " + " | ".join(cells) + " |")
    lines += ["", "Measured packet loss (random / bursty): " + ", ".join(
        f"{100 * mean('random', l, 2):.1f}% / {100 * mean('bursty', l, 2):.1f}%" for l in losses if l > 0) + ". "
              f"Runs that lost every end-of-stream copy and ended by the receiver's timeout: {timeouts} of "
              f"{executed}.",
              "" if have_opus else "Opus not measured: opusenc/opusdec not installed.",
              "", "![quality vs loss](quality_vs_loss.png)"]
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[4:4 + len(losses) + 2]))
    print(f"wrote {a.out}/quality_vs_loss.png, results.md, results.json")


if __name__ == "__main__":
    main()
