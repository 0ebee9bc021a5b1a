"""The pitch tracks a data pack trains with, computed from the pack's own (Opus-decoded) audio where the pack is
used, not where it is made: the decoder's pitch targets (WORLD Harvest, one 60 s block per core: about 53
core-minutes for the 3.3 h split, some 3.5 minutes on a lent GPU machine's 16 cores) and the pitch a stream
sends (the packed sender tracker's, on the GPU in seconds). They are added to the pack's .npz in place (its
audio stays as it is); ``--save`` writes them apart too, and ``--load`` adds saved ones to another copy of the
same pack:

    python -m audiocodec.train.pitch_tracks .pack/train.npz --device cuda --save $OUT/tracks.npz   # there
    python -m audiocodec.train.pitch_tracks .pack/train.npz --load tracks.npz                     # back here

``--targets tracker`` takes the tracker's pitch as the decoder's targets too (no pyworld needed, seconds
instead of minutes): a change of recipe, since the tracker only imitates Harvest.
"""
from __future__ import annotations

import argparse
import importlib.util
import zipfile

import numpy as np
import torch
from tqdm import tqdm

from ..model.pitch import PitchTracker
from .dataset import F0_HOP, track_pcm
from .pack import read_pack

TRACKS = ("f0", "sent_f0")  # the decoder's pitch targets; the pitch a stream sends


def spectra(tracker: PitchTracker, audio: np.ndarray, block: int = 30 * 16000) -> torch.Tensor:
    """Spectra (J, BINS + 1) float16 of a whole int16 signal (N,), J = N / 160, on the tracker's device; row j is
    the window ending at sample 160 (j + 1)."""
    pad = tracker.N_FFT - tracker.HOP
    x = np.concatenate([np.zeros(pad, np.int16), audio])
    rows = []
    for s in tqdm(range(0, len(audio), block), desc="spectra", unit="block"):
        seg = torch.from_numpy(x[s:s + block + pad].astype(np.float32) / 32768.0).to(tracker.window.device)
        n = (len(seg) - pad) // tracker.HOP * tracker.HOP + pad
        with torch.no_grad():
            rows.append(tracker.spectra(seg[None, :n])[0].half())
    return torch.cat(rows)


def track_split(tracker: PitchTracker, feats: torch.Tensor, block: int = 20000) -> np.ndarray:
    """The tracker's pitch (J,) of ``spectra``'s rows (J, F), laid out like ``dataset.load_f0`` (value i: sample
    160 i, Hz, 0 = unvoiced): what a pitch-coded stream would send, for training the decoder on it."""
    warm = 2 * sum(tracker.DILATIONS)
    out = []
    with torch.no_grad():
        for s in range(0, len(feats), block):
            x = feats[max(0, s - warm):s + block].float()[None]
            out.append(tracker.to_hz(tracker.logits(x))[0, s - max(0, s - warm):])
    hz = torch.cat(out).cpu().numpy().astype(np.float32)  # output j: the pitch at sample 160 (j - LOOKAHEAD + 1)
    shift = tracker.LOOKAHEAD - 1
    return np.concatenate([hz[shift:], np.zeros(shift + 1, np.float32)])


def sent_track(weights: dict, audio: np.ndarray, device: str) -> np.ndarray:
    """The pitch (ceil(N / 160),) that the tracker of ``weights`` sends for int16 audio (N,), as long as
    ``dataset.track_pcm``'s."""
    tracker = PitchTracker()
    tracker.load_state_dict({k: v.float() for k, v in weights.items()})
    tracker.to(device).eval()
    frames = -(-len(audio) // F0_HOP)
    return track_split(tracker, spectra(tracker, np.pad(audio, (0, frames * F0_HOP - len(audio)))))[:frames]


def append(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Add arrays to an .npz in place, leaving what is there as it is."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a))


def compute(path: str, device: str = "cpu", targets: str = "harvest", workers: int | None = None) -> dict[str, np.ndarray]:
    """The tracks the pack at ``path`` lacks, float16 (J,) each, from its audio."""
    have = set(np.load(path).files)
    todo = [t for t in TRACKS if t not in have]
    if not todo:
        return {}
    if "f0" in todo and targets == "harvest" and importlib.util.find_spec("pyworld") is None:
        raise SystemExit("error: Harvest's pitch targets need pyworld (pip install -e '.[train]'), "
                         "or take the tracker's pitch with --targets tracker")
    pack = read_pack(path)
    out = {}
    if "sent_f0" in todo or targets == "tracker":
        if pack.tracker is None:
            raise SystemExit(f"error: {path} holds no pitch tracker (pack_data.py packs the shipped one)")
        out["sent_f0"] = sent_track(pack.tracker, pack.audio, device)
    if "f0" in todo:
        out["f0"] = out["sent_f0"] if targets == "tracker" else track_pcm(pack.audio, workers, desc="Harvest")
    return {k: out[k].astype(np.float16) for k in todo}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pack", help="a pack_data.py .npz; the tracks it lacks are added to it")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where the tracker runs")
    p.add_argument("--targets", choices=("harvest", "tracker"), default="harvest", help="the decoder's pitch targets")
    p.add_argument("--workers", type=int, default=0, help="Harvest processes (default: one per core)")
    p.add_argument("--save", default="", help="also write the pack's tracks to this .npz")
    p.add_argument("--load", default="", help="add the tracks saved in this .npz (--save's) instead of computing them")
    a = p.parse_args()
    if a.load:
        saved, pack = np.load(a.load), np.load(a.pack)
        add = {k: saved[k] for k in TRACKS if k in saved.files and k not in pack.files}
        if any(len(v) != -(-int(pack["length"]) // F0_HOP) for v in add.values()):
            raise SystemExit(f"error: {a.load} holds the tracks of another pack than {a.pack}")
    else:
        add = compute(a.pack, a.device, a.targets, a.workers or None)
    append(a.pack, add)
    if a.save:
        d = np.load(a.pack)
        np.savez_compressed(a.save, **{k: d[k] for k in TRACKS if k in d.files})
    print(f"{a.pack}: added {', '.join(add) or 'nothing'}")


if __name__ == "__main__":
    main()
