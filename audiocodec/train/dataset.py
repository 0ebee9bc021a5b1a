"""The shared speech corpus: read a split once, keep it as one int16 array (cached as .npy).

Used by training and by the scripts that fit things on the training data (entropy model, PCA baseline)."""
from __future__ import annotations

import os

import numpy as np

from ..audio import load
from ..constants import SAMPLE_RATE
from ..evaluation.corpus import DEFAULT_ROOT, list_clips, manifest_rows  # noqa: F401 (re-exported for training)

CACHE = os.environ.get("AUDIOCODEC_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "audiocodec"))


def load_split(root: str = DEFAULT_ROOT, split: str = "train", progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All clips of ``split`` concatenated: (int16 samples, int64 start offsets of each clip)."""
    os.makedirs(CACHE, exist_ok=True)
    paths = list_clips(root, split)
    cache = os.path.join(CACHE, f"{split}-{len(paths)}.npz")
    if os.path.exists(cache):
        d = np.load(cache)
        return d["audio"], d["offsets"]
    from tqdm import tqdm

    parts = [(np.clip(load(p), -1, 1) * 32767).astype(np.int16) for p in tqdm(paths, desc=f"reading {split}", disable=not progress)]
    offsets = np.cumsum([0] + [len(p) for p in parts])[:-1]
    audio = np.concatenate(parts)
    np.savez(cache + ".tmp.npz", audio=audio, offsets=offsets)
    os.replace(cache + ".tmp.npz", cache)
    return audio, offsets


def excerpts(root: str = DEFAULT_ROOT, split: str = "test", n: int = 12, seconds: float = 4.0) -> list[np.ndarray]:
    """Fixed material for quick checks: the first ``seconds`` of ``n`` clips spread evenly over the split,
    float32 in [-1, 1] (training's validation clips, and the oracles' test clips)."""
    audio, offsets = load_split(root, split, progress=False)
    picks = np.linspace(0, len(offsets) - 1, n).astype(int)
    ends = list(offsets[1:]) + [len(audio)]
    length = int(seconds * SAMPLE_RATE)
    return [audio[offsets[i]:min(ends[i], offsets[i] + length)].astype(np.float32) / 32768.0 for i in picks]


F0_HOP = 160  # samples between pitch values (10 ms): value i describes sample 160 * i


def track_f0(x: np.ndarray) -> np.ndarray:
    """Pitch of float audio in [-1, 1], one value per 10 ms (value i: sample 160 * i; Hz, 0 = unvoiced):
    WORLD's Harvest (``pyworld``, a training-only extra: ``pip install -e '.[train]'``). WORLD's faster DIO
    agrees with it on the pitch but calls unvoiced about half the frames of low voices that Harvest finds
    voiced (docs/training-log.md)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyworld still imports pkg_resources
        import pyworld

    x = np.asarray(x, dtype=np.float64)
    f0, _ = pyworld.harvest(x, SAMPLE_RATE, f0_floor=60.0, f0_ceil=500.0, frame_period=1000.0 * F0_HOP / SAMPLE_RATE)
    return f0[: -(-len(x) // F0_HOP)]


def _track_pcm(block: np.ndarray) -> np.ndarray:
    """``track_f0`` of int16 samples (a worker of ``load_f0``, which sends blocks as int16 to keep them small)."""
    return track_f0(block / 32768.0)


def pitch_targets(f0: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """The decoder's pitch targets (n, length / 160) from a pitch track ``f0`` (``track_f0``) for crops of
    ``length`` samples starting at sample ``starts`` (on the pitch grid): value j is the pitch at the end of
    10 ms frame j (the last value of the track where a crop runs past it)."""
    idx = np.minimum(starts[:, None] // F0_HOP + 1 + np.arange(length // F0_HOP), len(f0) - 1)
    return f0[idx]


def track_pcm(audio: np.ndarray, workers: int | None = None, progress: bool = True, desc: str = "pitch") -> np.ndarray:
    """``track_f0`` of int16 samples (N,) -> (ceil(N / 160),) float32, on 60 s blocks in parallel (one per core:
    Harvest is slow, about 16 s of one core a minute of speech)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    block = 60 * SAMPLE_RATE  # a multiple of F0_HOP
    blocks = [audio[s:s + block] for s in range(0, len(audio), block)]  # int16 views: no float copy of the split
    with ProcessPoolExecutor(max(1, min(len(blocks), workers or os.cpu_count() or 1))) as pool:
        bar = tqdm(pool.map(_track_pcm, blocks), total=len(blocks), desc=desc, disable=None if progress else True)
        out = list(bar)  # disable=None: a bar on a terminal only
    return np.concatenate(out).astype(np.float32)


def load_f0(root: str = DEFAULT_ROOT, split: str = "train", progress: bool = True) -> np.ndarray:
    """Pitch of a split's concatenated audio (``track_pcm``), the training target for the decoder's pitch,
    cached as .npy (3.3 h of train: about 24 minutes on 2 cores)."""
    audio, offsets = load_split(root, split, progress)
    cache = os.path.join(CACHE, f"{split}-{len(offsets)}-f0-harvest.npy")
    if os.path.exists(cache):
        return np.load(cache)
    f0 = track_pcm(audio, progress=progress, desc=f"pitch of {split}")
    np.save(cache + ".tmp.npy", f0)
    os.replace(cache + ".tmp.npy", cache)
    return f0
