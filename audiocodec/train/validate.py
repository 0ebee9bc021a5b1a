"""Validation during training: code usage, PESQ-WB, STOI and the level of the first 50 ms (a burst there once
gamed PESQ) at 1.5, 6 and 12 kbps on fixed test clips."""
from __future__ import annotations

import os

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..model import Codec
from ..stream.modes import mode


def tracker_beside(sent_pitch: str) -> dict | None:
    """``--sent-pitch runs/X/train-f0.npy`` -> the weights of the tracker that wrote it (``runs/X/ckpt.pt``
    of ``scripts/train_pitch.py``), or None (``harvest``, or no checkpoint there)."""
    path = os.path.join(os.path.dirname(sent_pitch), "ckpt.pt")
    if not sent_pitch or sent_pitch == "harvest" or not os.path.isfile(path):
        return None
    return torch.load(path, map_location="cpu", weights_only=True)["tracker"]


def code_usage(model: Codec, clips: list[np.ndarray]) -> dict:
    """Perplexity of stages 1, 12 and 24 on the clips (1024: every code used evenly)."""
    codes = model.encode(torch.from_numpy(np.concatenate(clips)), model.cfg.n_codebooks)[0]
    out = {}
    for i in (0, 11, 23):
        p = torch.bincount(codes[i], minlength=model.cfg.codebook_size).float()
        p = p[p > 0] / p.sum()
        out[f"ppl{i + 1}"] = round(float(torch.exp(-(p * p.log()).sum())), 1)
    return out


@torch.no_grad()
def evaluate(model: Codec, clips: list[np.ndarray], tracker: dict | None = None) -> dict:
    """Code usage, and PESQ-WB / STOI at 1.5, 6 and 12 kbps on ``clips`` (float32 in [-1, 1]). With ``tracker``
    (``tracker_beside``) the streams from ``pitch_from`` rows up send its pitch, as the exported codec's do."""
    from pesq import pesq
    from pystoi import stoi

    model.eval()
    coder = model if tracker is None else model.with_pitch_tracker(tracker).to(model.device)
    out = code_usage(model, clips)
    power_db = lambda v: 10 * np.log10(np.mean(np.square(v[:800])) + 1e-10)
    for kbps in (1.5, 6.0, 12.0):
        scores, intelligibility, start = [], [], []
        for x in clips:
            y = coder.decode(coder.encode(torch.from_numpy(x), mode(kbps).rows))[0, 0, : len(x)].cpu().numpy()
            start.append(power_db(y) - power_db(x))
            try:
                scores.append(pesq(SAMPLE_RATE, x, y, "wb"))
            except Exception:  # pesq refuses clips it finds no speech in
                pass
            intelligibility.append(stoi(x, y, SAMPLE_RATE))
        out[f"pesq@{kbps:g}"] = float(np.mean(scores)) if scores else float("nan")
        out[f"stoi@{kbps:g}"] = round(float(np.mean(intelligibility)), 4)
        out[f"start_db@{kbps:g}"] = round(float(np.median(start)), 1)
    model.train()
    return out
