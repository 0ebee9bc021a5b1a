"""A judge that hears the decoded audio alone: DNSMOS P.835 (Microsoft's non-intrusive MOS predictor, the
``speechmos`` package's ONNX models), which nothing in this project trains on or was chosen by. It asks
whether what the panel's reference-based judges reward also sounds more natural on its own.

Two steps, since DNSMOS needs librosa and onnxruntime and the codec needs torch (two environments are fine):

    python research/dnsmos_check.py decode --out /tmp/dns              # this repo's venv: writes OUT/VARIANT/CLIP.wav
    python research/dnsmos_check.py score --out /tmp/dns               # a venv with speechmos, onnxruntime, librosa

``decode`` codes the 60 reported test clips (``--clips``: another list, one path a line) with the neural modes,
with and without ``--search`` steps (1.5 kbps: unsearched, as sent and ``--fixed-rate``, i.e. four stages and
three), the hybrid modes, Opus and Codec2; variants already decoded in OUT are kept. ``--low-band`` adds
what tells apart why this judge hears the hybrid modes below the neural ones: the neural 3 kbps output with
the input's own low band, unquantized, below 600 or 1400 Hz (``true-low-600``, ``true-low-1400``), and the
hybrid layers at a higher SNR (``hybrid-6-20db``, ``hybrid-12-24db``). ``score`` prints, per variant, the
mean SIG / BAK / OVRL / P.808 MOS, and each searched variant's change against the same mode unsearched, and
1.5 kbps's against its fixed-rate form, clip by clip (mean ± standard error); ``--pairs A:B,...`` adds other
pairs. DNSMOS scores 9 s windows, so short clips are repeated to fill one."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import soundfile as sf

SR = 16000
MODES = [("neural-3", 3.0, False), ("neural-6", 6.0, False), ("neural-12", 12.0, False),
         ("hybrid-6", 6.0, True), ("hybrid-12", 12.0, True)]


def decode(a) -> None:
    import torch

    from audiocodec import audio
    from audiocodec.compress import compress, decompress
    from audiocodec.evaluation.baselines import (
        Codec2Codec,
        OpusCodec,
        codec2_available,
        opus_available,
    )
    from audiocodec.evaluation.runner import fixed_test_clips
    from audiocodec.stream.engine import load_engine
    from audiocodec.stream.lowband import LowBand

    torch.set_num_threads(1)
    engine = load_engine()
    if a.clips:
        with open(a.clips) as f:
            paths = f.read().split()
    else:
        paths = fixed_test_clips(60)
    others = ([(f"opus-{k}", OpusCodec(k)) for k in (6, 8, 12)] if opus_available() else []) + \
             ([("codec2-3.2", Codec2Codec(3200))] if codec2_available() else [])
    # (label, kbps and compress's options) for this codec, (label, codec) for the others, ("original", None)
    runs = [("original", None), ("neural-1.5", (1.5, {})), ("neural-1.5-fixed-rate", (1.5, {"entropy": False}))]
    for label, kbps, hybrid in MODES:
        runs += [(label, (kbps, {"hybrid": hybrid})),
                 (f"{label}-s{a.search}", (kbps, {"hybrid": hybrid, "search": a.search}))]
    runs += others
    # (label, low band, whether unquantized) on the neural 3 kbps output
    low = [("true-low-600", LowBand(600, 12), True), ("true-low-1400", LowBand(1400, 16), True),
           ("hybrid-6-20db", LowBand(600, 20), False), ("hybrid-12-24db", LowBand(1400, 24), False)] if a.low_band else []
    have = set(os.listdir(a.out)) if os.path.isdir(a.out) else set()
    for i, path in enumerate(paths):
        name = f"{i:02d}-" + os.path.splitext(os.path.basename(path))[0]  # the index: six of the 60 share a name
        x = audio.load(path)
        out = {}
        for label, what in runs:
            if label in have:
                continue
            if what is None:
                out[label] = x
            elif isinstance(what, tuple):
                out[label] = decompress(compress(x, what[0], engine, **what[1]), engine)
            else:
                out[label] = what.run(x).decoded
        low_here = [(label, layer, true) for label, layer, true in low if label not in have]
        if low_here:
            y = decompress(compress(x, 3.0, engine), engine)
            for label, layer, true in low_here:
                out[label] = layer.replace(y, layer.mdct(x.astype(np.float64)) if true else layer.sent(x))
        for label, y in out.items():
            os.makedirs(os.path.join(a.out, label), exist_ok=True)
            sf.write(os.path.join(a.out, label, f"{name}.wav"), np.clip(y, -1, 1), SR, subtype="FLOAT")
        print(f"decoded {i + 1}/{len(paths)}: {name}", file=sys.stderr, flush=True)


def score(a) -> None:
    import onnxruntime as ort
    from speechmos import dnsmos

    class OneThread(ort.InferenceSession):  # DNSMOS's sessions on one thread, like everything measured here
        def __init__(self, path, *args, **kw):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            super().__init__(path, opts, *args, **kw)

    dnsmos.ort.InferenceSession = OneThread

    keys = ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos")
    variants = sorted(v for v in os.listdir(a.out) if os.path.isdir(os.path.join(a.out, v)))
    scores = {}
    for v in variants:
        files = sorted(os.listdir(os.path.join(a.out, v)))
        runs = {f: dnsmos.run(sf.read(os.path.join(a.out, v, f), dtype="float32")[0], SR) for f in files}
        scores[v] = {f: [float(r[k]) for k in keys] for f, r in runs.items()}
        print(f"scored {v}", file=sys.stderr, flush=True)
    print("variant          SIG    BAK    OVRL   P.808")
    for v in variants:
        m = np.mean(list(scores[v].values()), 0)
        print(f"{v:15s} " + "  ".join(f"{s:.3f}" for s in m))
    pairs = []  # each searched variant against it unsearched, 1.5 kbps against its fixed-rate form, then --pairs
    for v in variants:
        base = v.rsplit("-s", 1)[0] if f"{v}-fixed-rate" not in scores else f"{v}-fixed-rate"
        if base != v and base in scores:
            pairs.append((v, base))
    pairs += [tuple(pair.split(":")) for pair in filter(None, a.pairs.split(","))]
    for v, base in pairs:
        common = sorted(set(scores[v]) & set(scores[base]))
        d = np.array([np.subtract(scores[v][f], scores[base][f]) for f in common])
        se = d.std(0, ddof=1) / np.sqrt(len(d))
        print(f"{v} against {base}: " + "  ".join(f"{k.split('_')[0].upper()} {m:+.3f} ± {s:.3f}"
                                                for k, m, s in zip(keys, d.mean(0), se)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=("decode", "score"))
    p.add_argument("--out", default="/tmp/dnsmos", help="folder of decoded audio, one subfolder per variant")
    p.add_argument("--clips", help="decode: a file listing clips, one path a line (default: the 60 reported clips)")
    p.add_argument("--search", type=int, default=30, help="decode: steps of the searched variants")
    p.add_argument("--low-band", action="store_true", help="decode: also the low-band variants (see above)")
    p.add_argument("--pairs", default="", help="score: more pairs A:B to compare clip by clip, comma-separated")
    a = p.parse_args()
    decode(a) if a.step == "decode" else score(a)


if __name__ == "__main__":
    main()
