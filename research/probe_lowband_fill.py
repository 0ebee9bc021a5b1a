"""Whether the hybrid receiver should rebuild the low band inside the sent quantization cells from the neural
output, rather than at the cells' centres.

    python research/probe_lowband_fill.py [--kbps 6] [--clips 30] [--out DIR]

A judge of the output alone (DNSMOS P.835, ``research/dnsmos_check.py --low-band``) hears the hybrid modes
below the neural ones, mostly through the low band's quantization noise. A receiver can change that without a
bit or a format change: each sent coefficient only says that the true one lies in its cell
``[(q - 1/2) step, (q + 1/2) step]``, and the neural decoder's own MDCT coefficient there is a guess at where.
Variants on train excerpts (the neural 3 kbps layer, the low band of the ``--kbps`` hybrid mode):

- ``shipped``: the cells' centres;
- ``zeros-neural``: the coefficients sent as zero take the neural output's, held within their cell;
- ``zeros-neural-half``: the same at half that amplitude;
- ``all-neural``: every coefficient takes the neural output's, held within its cell.

Prints the panel (PESQ-WB, ViSQOL, STOI, ESTOI) per variant and its change against ``shipped``, clip by clip
(mean ± standard error); ``--out`` also writes the audio, for DNSMOS or listening."""
from __future__ import annotations

import argparse
import os

import numpy as np
import soundfile as sf
import torch

from audiocodec.compress import compress, decompress
from audiocodec.constants import SAMPLE_RATE
from audiocodec.evaluation.metrics import estoi, pesq_wb, stoi, visqol
from audiocodec.stream import modes
from audiocodec.stream.engine import load_engine
from audiocodec.stream.lowband import BAND, S_MIN, LowBand
from audiocodec.train.dataset import DEFAULT_ROOT, excerpts


def variants(layer: LowBand, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The input ``x`` and the neural output ``y`` -> each variant's audio."""
    scales, q = layer.quantize(layer.mdct(x.astype(np.float64)))
    step = np.repeat(layer.steps(scales), BAND, axis=1)
    live = np.repeat(scales > S_MIN, BAND, axis=1)
    neural = layer.mdct(y.astype(np.float64))
    centre = layer.dequantize(scales, q)
    inside = np.clip(neural, (q - 0.5) * step, (q + 0.5) * step)
    zero = (q == 0) & live
    coefs = {"shipped": centre, "zeros-neural": np.where(zero, inside, centre),
             "zeros-neural-half": np.where(zero, 0.5 * inside, centre), "all-neural": np.where(live, inside, 0.0)}
    return {k: layer.replace(y, c) for k, c in coefs.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kbps", type=float, default=6.0, help="the hybrid mode (6 or 12)")
    p.add_argument("--clips", type=int, default=30)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out", help="also write each variant's audio to OUT/VARIANT/NNN.wav")
    p.add_argument("--data", default=DEFAULT_ROOT)
    a = p.parse_args()
    torch.set_num_threads(1)
    engine, m = load_engine(), modes.mode(a.kbps, hybrid=True)
    layer = LowBand(m.low_hz, m.low_snr_db)
    scores: dict[str, list] = {}
    for i, x in enumerate(excerpts(a.data, "train", a.clips, seconds=a.seconds)):
        y = decompress(compress(x, m.neural_kbps, engine), engine)
        for name, z in variants(layer, x, y).items():
            scores.setdefault(name, []).append([pesq_wb(x, z), visqol(x, z), stoi(x, z), estoi(x, z)])
            if a.out:
                os.makedirs(os.path.join(a.out, name), exist_ok=True)
                sf.write(os.path.join(a.out, name, f"{i:03d}.wav"), np.clip(z, -1, 1), SAMPLE_RATE, subtype="FLOAT")
    base = np.array(scores["shipped"])
    print(f"hybrid {a.kbps:g} (below {m.low_hz} Hz at {m.low_snr_db} dB), {len(base)} train excerpts\n")
    print("| variant | PESQ-WB | ViSQOL | STOI | ESTOI |\n|---|---|---|---|---|")
    for name, v in scores.items():
        v = np.array(v)
        d = v - base
        se = d.std(0, ddof=1) / np.sqrt(len(d))
        print(f"| {name} | " + " | ".join(f"{m:.3f} ({c:+.3f} ± {s:.3f})" for m, c, s in zip(v.mean(0), d.mean(0), se)) + " |")


if __name__ == "__main__":
    main()
