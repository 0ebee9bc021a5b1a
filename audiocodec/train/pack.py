"""A data pack: the train split, the validation clips and the sender's pitch tracker in one .npz, for training on
a machine that cannot read the corpus (a lent GPU takes the working tree and 64 MiB in all). The audio travels
as Ogg/Opus (about 27 kbps at 16 kHz: 3.3 h in about 40 MB), in blocks that encode and decode in parallel;
validation clips as int16, the tracker as float16 weights. The pitch tracks (float16) are usually added where
the pack is used (audiocodec/train/pitch_tracks.py)."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

from ..constants import SAMPLE_RATE

BLOCK = 10 * 60 * SAMPLE_RATE  # samples per Opus stream (a multiple of the pitch grid)


@dataclass
class Pack:
    audio: np.ndarray                 # (N,) int16, the clips concatenated
    offsets: np.ndarray               # (clips,) int64 start of each clip
    f0: np.ndarray | None             # (N / 160,) float32 pitch targets (WORLD Harvest; Hz, 0 = unvoiced), if added
    sent_f0: np.ndarray | None        # ... the pitch a stream sends (the sender's tracker), if added
    clips: list[np.ndarray]           # validation clips, float32 in [-1, 1]
    tracker: dict | None              # the sender's pitch tracker's weights, if packed


def _opus(block: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    sf.write(buf, block, SAMPLE_RATE, format="OGG", subtype="OPUS")
    return np.frombuffer(buf.getvalue(), np.uint8)


def _pcm(data: np.ndarray) -> np.ndarray:
    return sf.read(io.BytesIO(data.tobytes()), dtype="int16")[0]


def write_pack(path: str, pack: Pack) -> None:
    """Write ``pack`` to ``path`` (.npz); the audio as Opus (lossy: a pack is training material, not a reference)."""
    blocks = [pack.audio[s:s + BLOCK] for s in range(0, len(pack.audio), BLOCK)]
    with ThreadPoolExecutor() as pool:  # libsndfile releases the GIL
        opus = list(pool.map(_opus, blocks))
    out = {f"opus{i:03d}": b for i, b in enumerate(opus)}
    out.update(length=np.array(len(pack.audio)), offsets=pack.offsets,
               val=np.concatenate([(c * 32768).round().clip(-32768, 32767).astype(np.int16) for c in pack.clips]),
               val_offsets=np.cumsum([0] + [len(c) for c in pack.clips])[:-1])
    out.update({k: v.astype(np.float16) for k, v in (("f0", pack.f0), ("sent_f0", pack.sent_f0)) if v is not None})
    out.update({"tracker." + k: v.half().numpy() for k, v in (pack.tracker or {}).items()})
    np.savez_compressed(path, **out)


def read_pack(path: str) -> Pack:
    """``write_pack``'s file -> Pack."""
    d = np.load(path)
    with ThreadPoolExecutor() as pool:
        audio = np.concatenate(list(pool.map(_pcm, [d[k] for k in sorted(f for f in d.files if f.startswith("opus"))])))
    audio = audio[:int(d["length"])]
    bounds = np.append(d["val_offsets"], len(d["val"]))
    track = {k: d[k].astype(np.float32) if k in d.files else None for k in ("f0", "sent_f0")}
    return Pack(audio=audio, offsets=d["offsets"], f0=track["f0"], sent_f0=track["sent_f0"],
                clips=[d["val"][a:b].astype(np.float32) / 32768.0 for a, b in zip(bounds[:-1], bounds[1:])],
                tracker={k[len("tracker."):]: torch.from_numpy(d[k]) for k in d.files if k.startswith("tracker.")} or None)
