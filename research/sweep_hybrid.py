"""Re-choosing a hybrid mode's low band (cutoff and SNR) by the panel of judges, on train clips.

    python research/sweep_hybrid.py --kbps 12 --settings 1400:15,1400:16,1600:15 --clips 30 --search 30

The hybrid modes were chosen on PESQ-WB alone when their 3 kbps neural layer cost 2.77 kbps; the context model
has since made it cheaper, which leaves part of the nominal rate unused. Each setting (``CUTOFF:SNR``, the
first the baseline, as a rule the shipped one) goes through the real ``compress`` / ``decompress``
(``stream/modes.py``'s table patched for the run). Prints per setting the actual kbps (payload, as ``benchmark.py`` counts it), the panel
(PESQ-WB, ViSQOL, STOI, ESTOI) and each judge's change against the first setting, clip by clip (its mean, and the change ± standard
error). ``--search``: also the first setting with that many steps of search, for the rate it adds
(the search moves only the neural layer, so it adds about the same to every setting)."""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from audiocodec.evaluation.codecs import HybridCodec
from audiocodec.evaluation.metrics import estoi, pesq_wb, stoi, visqol
from audiocodec.evaluation.tables import paired
from audiocodec.stream import modes
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts

JUDGES = (("PESQ-WB", pesq_wb), ("ViSQOL", visqol), ("STOI", stoi), ("ESTOI", estoi))


def with_setting(kbps: float, cutoff: int, snr: int) -> None:
    """Make the hybrid mode of ``kbps`` send the band below ``cutoff`` Hz at ``snr`` dB."""
    modes.MODES = tuple(dataclasses.replace(m, low_hz=cutoff, low_snr_db=snr) if m.hybrid and m.kbps == kbps else m
                        for m in modes.MODES)


def panel(codec, clips: list[np.ndarray]) -> tuple[float, np.ndarray]:
    """A codec under test (``evaluation.codecs``) on the clips: its payload kbps, and the judges' scores (clips, 4)."""
    coded = [codec.run(x) for x in clips]
    rate = 8 * sum(c.payload_bytes for c in coded) / (sum(map(len, clips)) / 16000) / 1000
    return rate, np.array([[f(x, c.decoded) for _, f in JUDGES] for x, c in zip(clips, coded)])


def report(label: str, rate: float, scores: np.ndarray, first: np.ndarray | None = None) -> None:
    """Print a run's rate and panel, and with ``first`` (the baseline's scores) each judge's change against it,
    clip by clip."""
    line = "  ".join(f"{name} {v:.3f}" for (name, _), v in zip(JUDGES, np.nanmean(scores, 0)))
    print(f"{label}  {rate:.2f} kbps  {line}", flush=True)
    if first is not None:
        parts = [f"{name} {paired(first[:, j], scores[:, j])}" for j, (name, _) in enumerate(JUDGES)]
        print("    against the first: " + "  ".join(parts), flush=True)


def run(kbps: float, clips: list[np.ndarray], search: int = 0) -> tuple[float, np.ndarray]:
    return panel(HybridCodec(kbps, search=search), clips)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kbps", type=float, default=12.0, help="the hybrid mode (6 or 12)")
    p.add_argument("--settings", default="1400:16,1400:17,1600:14,1600:15", help="CUTOFF:SNR, comma-separated (the first: the baseline)")
    p.add_argument("--clips", type=int, default=30)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--search", type=int, default=0, help="also the first setting with this many search steps")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    clips = excerpts(a.data, "train", a.clips, seconds=a.seconds)
    settings = [tuple(int(v) for v in s.split(":")) for s in a.settings.split(",")]
    shipped = modes.MODES
    results = {}
    for cutoff, snr in settings:
        modes.MODES = shipped
        with_setting(a.kbps, cutoff, snr)
        results[(cutoff, snr)] = rate, scores = run(a.kbps, clips)
        first = results[settings[0]][1] if (cutoff, snr) != settings[0] else None
        report(f"hybrid {a.kbps:g}  < {cutoff} Hz at {snr} dB", rate, scores, first)
    if a.search:
        modes.MODES = shipped
        with_setting(a.kbps, *settings[0])
        rate, _ = run(a.kbps, clips, a.search)
        print(f"hybrid {a.kbps:g}  < {settings[0][0]} Hz at {settings[0][1]} dB  --search {a.search}: {rate:.2f} kbps "
              f"({rate - results[settings[0]][0]:+.2f})", flush=True)


if __name__ == "__main__":
    main()
