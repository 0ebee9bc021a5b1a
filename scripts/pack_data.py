"""Pack the train split, the validation clips and the shipped sender pitch tracker into one file, for training on a
machine that cannot read the corpus (a lent GPU takes the working tree and 64 MiB in all):

    python scripts/pack_data.py --out .pack/train.npz              # the whole split: 3.3 h, about 40 MiB
    bash scripts/gpu_run.sh SECONDS [train.py options]             # there (it reads .pack/train.npz)

The audio travels as Ogg/Opus at about 27 kbps (audiocodec/train/pack.py): about 4.5 minutes of one core for
the whole split, on every core there is. ``--minutes`` takes part of the split, clips spread evenly over it
(every corpus in its share). Each clip is widened to the 10 ms pitch grid. The pitch tracks are left out:
``python -m audiocodec.train.pitch_tracks`` adds them from the packed audio where the pack is used (gpu_run.sh
does, on the GPU machine's 16 cores) or here; ``--harvest`` packs Harvest's pitch of the original audio instead
(Harvest calls about 10 % of the frames' voicing otherwise on the Opus-decoded audio).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from audiocodec.model.codec import Codec, default_weights_path
from audiocodec.train.dataset import DEFAULT_ROOT, F0_HOP, excerpts, load_f0, load_split
from audiocodec.train.pack import Pack, write_pack


def pick_clips(offsets: np.ndarray, total: int, n_f0: int, minutes: float) -> list[tuple[int, int]]:
    """(first, end) pitch-grid rows of the clips to take, in split order: all of them, or clips spread evenly
    over the split until ``minutes`` of audio."""
    ends = np.append(offsets[1:], total)
    want = int(minutes * 60 * 16000) if minutes > 0 else np.inf  # widened clips overlap: all of them add up to more
    order = np.argsort((np.arange(len(offsets)) * 0.6180339887) % 1.0, kind="stable")  # spread evenly, any prefix
    parts, taken = [], 0
    for i in order:
        if taken >= want:
            break
        lo, hi = offsets[i] // F0_HOP, min(-(-ends[i] // F0_HOP), n_f0)
        parts.append((lo, hi))
        taken += (hi - lo) * F0_HOP
    return sorted(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--minutes", type=float, default=0.0, help="audio to take from the train split (default 0: all)")
    p.add_argument("--harvest", action="store_true", help="pack Harvest's pitch of the original audio (dataset.load_f0: "
                   "cached, else about 24 minutes here) rather than leave the machine to track the Opus-decoded audio")
    p.add_argument("--data", default=DEFAULT_ROOT, help="the speech corpus")
    p.add_argument("--weights", default=default_weights_path(), help="weights whose pitch tracker travels along")
    p.add_argument("--eval-clips", type=int, default=12, help="validation clips (the first 4 s of each, as train.py's)")
    a = p.parse_args()
    audio, offsets = load_split(a.data, "train")
    parts = pick_clips(offsets, len(audio), -(-len(audio) // F0_HOP), a.minutes)
    f0 = load_f0(a.data, "train") if a.harvest else None
    codec = Codec.load(a.weights)
    pack = Pack(audio=np.concatenate([audio[lo * F0_HOP:hi * F0_HOP] for lo, hi in parts]),
                offsets=np.cumsum([0] + [(hi - lo) * F0_HOP for lo, hi in parts])[:-1],
                f0=np.concatenate([f0[lo:hi] for lo, hi in parts]) if a.harvest else None, sent_f0=None,
                clips=excerpts(a.data, "test", a.eval_clips),
                tracker=None if codec.pitch is None else codec.pitch.state_dict())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_pack(a.out + ".tmp.npz", pack)
    os.replace(a.out + ".tmp.npz", a.out)
    print(f"{a.out}: {len(parts)} clips, {len(pack.audio) / 16000 / 60:.1f} min, {os.path.getsize(a.out) / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    main()
