"""The shared speech corpus as product code sees it: where it lives and which clips make up a split
(its ``manifest.csv``: one row per clip with ``path``, ``split`` and, for most, ``source``).

Reading the manifest (and, for ``spread_clips``, the clips it picks): the training package builds its cached
arrays on top of this."""
from __future__ import annotations

import csv
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_ROOT = os.environ.get("AUDIOCODEC_DATA", os.path.join(os.path.dirname(REPO), "shared", "data", "speech"))


def manifest_rows(root: str = DEFAULT_ROOT, split: str = "train") -> list[dict]:
    """The manifest's rows of ``split``, in manifest order."""
    with open(os.path.join(root, "manifest.csv"), newline="") as f:
        return [row for row in csv.DictReader(f) if row["split"] == split]


def list_clips(root: str = DEFAULT_ROOT, split: str = "train") -> list[str]:
    """Paths of a split's clips, in manifest order."""
    return [os.path.join(root, row["path"]) for row in manifest_rows(root, split)]


def spread_clips(root: str, n: int, min_seconds: float = 2.0, split: str = "test") -> list[tuple]:
    """``n`` clips spread over a split, skipping ones shorter than ``min_seconds`` -> (path, 16 kHz audio)."""
    import numpy as np

    from ..audio import load
    from ..constants import SAMPLE_RATE

    paths = list_clips(root, split)
    out = []
    for i in np.linspace(0, len(paths) - 1, 4 * n).astype(int):
        wav = load(paths[i])
        if len(wav) >= min_seconds * SAMPLE_RATE:
            out.append((paths[i], wav))
        if len(out) == n:
            break
    return out
