"""Pack part of the train split, its pitch tracks and the validation clips into one file, for training on a
machine that cannot read the corpus (a lent GPU takes the working tree and 64 MiB in all):

    python scripts/pack_data.py --minutes 30 --out .pack/train.npz
    python scripts/train.py --pack .pack/train.npz ...     # there, instead of --data

Clips are taken evenly over the whole split (every corpus in its share), each widened to the 10 ms pitch grid
so that the pitch tracks (WORLD Harvest's targets, ``load_f0``, and the pitch a stream sends, ``--sent-pitch``)
are sliced with the audio and stay aligned. The shipped model's sender pitch tracker travels too, so that
validation sends the pitch as the exported codec does. Written compressed (int16 audio; about 1.5 MB a minute).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from audiocodec.dataset import DEFAULT_ROOT, F0_HOP, excerpts, load_f0, load_split  # noqa: E402
from audiocodec.model.codec import Codec, default_weights_path  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--minutes", type=float, default=30.0, help="audio to take from the train split (default: 30)")
    p.add_argument("--sent-pitch", default="runs/pitch_s/train-f0.npy",
                   help="the split's sent pitch track (train_pitch.py's train-f0.npy; '' for none)")
    p.add_argument("--data", default=DEFAULT_ROOT, help="the speech corpus")
    p.add_argument("--weights", default=default_weights_path(), help="weights whose pitch tracker travels along")
    p.add_argument("--eval-clips", type=int, default=12, help="validation clips (the first 4 s of each, as train.py's)")
    a = p.parse_args()
    if a.sent_pitch and not os.path.isfile(a.sent_pitch):
        sys.exit(f"error: {a.sent_pitch}: no sent pitch track (write one with `python scripts/train_pitch.py --out "
                 f"runs/pitch_s --init audiocodec/weights/default.safetensors --steps 0`, or pass --sent-pitch '')")

    audio, offsets = load_split(a.data, "train")
    f0 = load_f0(a.data, "train")
    sent = np.load(a.sent_pitch)[:len(f0)] if a.sent_pitch else None
    ends = np.append(offsets[1:], len(audio))
    want = int(a.minutes * 60 * 16000)
    order = np.argsort((np.arange(len(offsets)) * 0.6180339887) % 1.0, kind="stable")  # spread evenly, any prefix
    parts, taken = [], 0
    for i in order:
        if taken >= want:
            break
        lo, hi = offsets[i] // F0_HOP, min(-(-ends[i] // F0_HOP), len(f0))  # on the pitch grid
        parts.append((lo, hi))
        taken += (hi - lo) * F0_HOP
    parts.sort()
    pack = {
        "audio": np.concatenate([audio[lo * F0_HOP:hi * F0_HOP] for lo, hi in parts]),
        "offsets": np.cumsum([0] + [(hi - lo) * F0_HOP for lo, hi in parts])[:-1],
        "f0": np.concatenate([f0[lo:hi] for lo, hi in parts]).astype(np.float32),
    }
    if sent is not None:
        pack["sent_f0"] = np.concatenate([sent[lo:hi] for lo, hi in parts]).astype(np.float32)
    clips = excerpts(a.data, "test", a.eval_clips)
    pack["val"] = np.concatenate([(c * 32768).round().clip(-32768, 32767).astype(np.int16) for c in clips])
    pack["val_offsets"] = np.cumsum([0] + [len(c) for c in clips])[:-1]
    codec = Codec.load(a.weights)
    if codec.pitch is not None:
        pack.update({"tracker." + k: v.half().numpy() for k, v in codec.pitch.state_dict().items()})
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    np.savez_compressed(a.out + ".tmp.npz", **pack)
    os.replace(a.out + ".tmp.npz", a.out)
    print(f"{a.out}: {len(parts)} clips, {len(pack['audio']) / 16000 / 60:.1f} min, "
          f"{os.path.getsize(a.out) / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
