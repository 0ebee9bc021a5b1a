"""The shared speech corpus as product code sees it: where it lives and which clips make up a split
(its ``manifest.csv``: one row per clip with ``path``, ``split`` and, for most, ``source``).

Reading only the manifest, not the audio: the training package builds its cached arrays on top of this."""
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
