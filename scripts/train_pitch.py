"""Train the sender's pitch tracker (audiocodec/model/pitch.py) to imitate WORLD Harvest on the train split.

    python scripts/train_pitch.py --out runs/pitch              # about 20 minutes on 2 CPU cores
    python scripts/export.py runs/hv2/ckpt.pt --pitch runs/pitch/ckpt.pt   # ship it inside the codec's weights
    python scripts/train_pitch.py --out runs/p --init audiocodec/weights/default.safetensors --steps 0
                                        # no training: the shipped tracker's pitch of the split, for train.py

The spectra of the whole 3.3 h train split (64 ms windows every 10 ms) are computed once and kept in memory
as float16; a batch is random 1.28 s runs of them, with Harvest's pitch at each frame's end as the target
(the cache ``dataset.load_f0`` keeps; 24 minutes on 2 cores the first time). The loss is cross-entropy
against a Gaussian over the 128 pitch classes (or the unvoiced class), on every frame after the first 30
(the convolutions' reach). It writes the tracker's pitch of the whole split beside the checkpoint
(``train-f0.npy``), what ``train.py --sent-pitch`` trains the decoder on. At the end it reports, on 24 test excerpts,
how often the tracker agrees with Harvest: voicing, gross errors (more than 20 % off) and the median error.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from audiocodec.model.pitch import PitchTracker
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts, load_f0, load_split, track_f0
from audiocodec.train.pitch_tracks import spectra, track_split


def agreement(tracker: PitchTracker, data: str, clips: int = 24) -> dict:
    """Tracker against Harvest on test excerpts: voicing agreement, gross error rate (> 20 % off, frames
    both call voiced) and median error in % of an octave."""
    ours, ref = [], []
    for clip in excerpts(data, "test", clips):
        n = len(clip) // PitchTracker.HOP * PitchTracker.HOP
        ours.append(tracker.track(torch.from_numpy(clip[:n])[None, None].to(tracker.window.device))[0].cpu().numpy())
        look = PitchTracker.LOOKAHEAD
        ours[-1] = ours[-1][look:]                            # output j + look: the pitch at the end of frame j
        ref.append(track_f0(clip)[1:n // PitchTracker.HOP + 1 - look])
    a, b = np.concatenate(ours), np.concatenate(ref)
    both = (a > 0) & (b > 0)
    err = np.abs(np.log2(a[both] / b[both]))
    return {"voicing_agree": float(np.mean((a > 0) == (b > 0))), "gross_20pct": float(np.mean(err > math.log2(1.2))),
            "median_err_pct_oct": float(100 * np.median(err)), "frames": int(len(b))}


def initial_tracker(path: str) -> dict:
    """A tracker's weights from a ``train_pitch.py`` checkpoint or from a pitch-coded codec's safetensors."""
    if path.endswith(".safetensors"):
        from audiocodec.model import Codec

        codec = Codec.load(path)
        if not codec.cfg.pitch_coded:
            sys.exit(f"error: {path} holds no pitch tracker (its codec does not send the pitch)")
        return codec.pitch.state_dict()
    return torch.load(path, map_location="cpu", weights_only=True)["tracker"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/pitch")
    p.add_argument("--data", default=DEFAULT_ROOT)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=48, help="runs of --frames frames per step")
    p.add_argument("--frames", type=int, default=128, help="10 ms frames per run")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="", help="start from this tracker: a train_pitch.py ckpt.pt or the tracker inside "
                   "a shipped codec (.safetensors); with --steps 0 it only writes that tracker's train-f0.npy")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)

    tracker = PitchTracker()
    if a.init:
        tracker.load_state_dict(initial_tracker(a.init))
    audio, _ = load_split(a.data, "train")
    f0 = torch.from_numpy(load_f0(a.data, "train"))
    tracker.to(a.device)
    feats = spectra(tracker, audio)                                # (J, F)
    frames = min(len(feats), len(f0) - 1)
    look = tracker.LOOKAHEAD                                       # output j: Harvest at the end of frame j - look
    target = tracker.targets(f0[(torch.arange(frames) + 1 - look).clamp(min=0)]).to(a.device)
    offsets = torch.arange(a.frames, device=a.device)
    warm = 1 + 2 * sum(tracker.DILATIONS)  # frames before the convolutions see a full past
    opt = torch.optim.AdamW(tracker.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / max(1, a.steps))))
    gen = torch.Generator(device=a.device).manual_seed(a.seed)
    bar = tqdm(range(a.steps), desc="pitch tracker")
    for step in bar:
        idx = torch.randint(0, frames - a.frames, (a.batch,), device=a.device, generator=gen)[:, None] + offsets
        logits = tracker.logits(feats[idx].float())[:, warm:]
        loss = -(target[idx[:, warm:]] * logits.log_softmax(-1)).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % 500 == 0 and step + 1 < a.steps:  # the last one is saved below
            torch.save({"tracker": tracker.state_dict(), "step": step + 1}, os.path.join(a.out, "ckpt.pt"))
    torch.save({"tracker": tracker.state_dict(), "step": a.steps}, os.path.join(a.out, "ckpt.pt"))
    tracker.eval()
    np.save(os.path.join(a.out, "train-f0.npy"), track_split(tracker, feats))
    print(agreement(tracker, a.data))


if __name__ == "__main__":
    main()
