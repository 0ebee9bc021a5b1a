"""A shorter iSTFT window for the decoder: the shipped weights with the head's window cut from 40 ms to
``--window`` samples, as a starting point for ``train.py --init`` (decoder-only, ``--freeze-codes``).

The head's overlap tail (window - hop) is most of the codec's latency: 640 gives 20 + 30 = 50 ms, 320 gives
20 + 10 = 30 ms. The codes do not change (the encoder's spectral branch keeps its own 640-sample windows), so
files and entropy models stay; only the receiver's head differs. The head's read-out rows (log-magnitude,
phase advance, phase offset, one per bin) are carried over by frequency (linear interpolation between the old
bins), and the log-magnitudes shifted by log(window / 640), a steady tone's level in a shorter frame.

    python research/head_window.py --window 320 --out runs/hw320/init.pt
    python scripts/train.py --out runs/hw320 --init runs/hw320/init.pt --freeze-codes true ...
"""
import argparse
import dataclasses
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from audiocodec.model import Codec  # noqa: E402
from audiocodec.train.state import initial_weights  # noqa: E402


def regrid(rows: torch.Tensor, old_bins: int, new_bins: int) -> torch.Tensor:
    """(old_bins, ...) rows indexed by bin -> (new_bins, ...) at the same frequencies (linear interpolation)."""
    pos = torch.arange(new_bins, dtype=torch.float64) * (old_bins - 1) / (new_bins - 1)
    lo = pos.floor().long().clamp(max=old_bins - 2)
    w = (pos - lo).to(rows.dtype).view(-1, *[1] * (rows.dim() - 1))
    return rows[lo] * (1 - w) + rows[lo + 1] * w


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="audiocodec/weights/default.safetensors")
    p.add_argument("--window", type=int, default=320, help="the head's new window in samples (a multiple of the hop)")
    p.add_argument("--out", required=True, help="a .pt that train.py --init reads")
    a = p.parse_args()
    cfg, state, step = initial_weights(a.weights)
    old = cfg.head_fft or cfg.n_fft
    new_cfg = dataclasses.replace(cfg, head_fft=a.window)
    ob, nb = old // 2 + 1, a.window // 2 + 1
    for name in ("head.out.weight", "head.out.bias"):
        t = state[name].float()
        parts = t.view(3, ob, *t.shape[1:])
        parts = torch.stack([regrid(part, ob, nb) for part in parts])
        if name.endswith("bias"):
            parts[0] += math.log(a.window / old)
        state[name] = parts.reshape(3 * nb, *t.shape[1:])
    model = Codec(new_cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save({"config": dataclasses.asdict(new_cfg), "model": model.state_dict(), "step": step}, a.out)
    print(f"{a.out}: window {old} -> {a.window}, latency {1000 * (cfg.frame_size + a.window - cfg.hop) / cfg.sample_rate:g} ms"
          f" (missing: {sorted(missing) or 'none'})")


if __name__ == "__main__":
    main()
