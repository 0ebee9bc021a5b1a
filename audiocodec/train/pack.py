"""A data pack: the train split, its pitch tracks and the validation clips in one .npz, for training on a machine
that cannot read the corpus (a lent GPU takes the working tree and 64 MiB in all). The audio travels as Ogg/Opus
(about 30 kbps at 16 kHz: 3.3 h in about 45 MB), in blocks that encode and decode in parallel; pitch tracks
as float16, validation clips as int16, the sender's pitch tracker as float16 weights."""
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
    f0: np.ndarray                    # (N / 160,) float32 pitch targets (WORLD Harvest; Hz, 0 = unvoiced)
    sent_f0: np.ndarray | None        # ... the pitch a stream sends (the sender's tracker), if packed
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
    out.update(length=np.array(len(pack.audio)), offsets=pack.offsets, f0=pack.f0.astype(np.float16),
               val=np.concatenate([(c * 32768).round().clip(-32768, 32767).astype(np.int16) for c in pack.clips]),
               val_offsets=np.cumsum([0] + [len(c) for c in pack.clips])[:-1])
    if pack.sent_f0 is not None:
        out["sent_f0"] = pack.sent_f0.astype(np.float16)
    out.update({"tracker." + k: v.half().numpy() for k, v in (pack.tracker or {}).items()})
    np.savez_compressed(path, **out)


def read_pack(path: str) -> Pack:
    """``write_pack``'s file -> Pack."""
    d = np.load(path)
    with ThreadPoolExecutor() as pool:
        audio = np.concatenate(list(pool.map(_pcm, [d[k] for k in sorted(f for f in d.files if f.startswith("opus"))])))
    audio = audio[:int(d["length"])]
    bounds = np.append(d["val_offsets"], len(d["val"]))
    return Pack(audio=audio, offsets=d["offsets"], f0=d["f0"].astype(np.float32),
                sent_f0=d["sent_f0"].astype(np.float32) if "sent_f0" in d.files else None,
                clips=[d["val"][a:b].astype(np.float32) / 32768.0 for a, b in zip(bounds[:-1], bounds[1:])],
                tracker={k[len("tracker."):]: torch.from_numpy(d[k]) for k in d.files if k.startswith("tracker.")} or None)
