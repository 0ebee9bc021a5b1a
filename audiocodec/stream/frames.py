"""``Frame``: what a stream carries for one 20 ms frame. No torch, so the transport can use it.

The .acdc container (``compress.py``) and the UDP packets (``transport/packets.py``) both serialise lists of
frames; ``FrameEncoder`` makes them from audio and ``FrameDecoder`` turns them back into audio."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    codes: np.ndarray              # (rows,) int64: the frame's codes (the first row is the pitch in a pitch stream)
    low: np.ndarray | None = None  # (coefs,) float: its low band's MDCT coefficients (hybrid streams only)


def frames_of(codes: np.ndarray, low: np.ndarray | None = None) -> list[Frame]:
    """codes (rows, n) and, in a hybrid stream, the low band (n, coefs) -> n frames."""
    if low is None:
        return [Frame(c) for c in codes.T]
    return [Frame(c, row) for c, row in zip(codes.T, low, strict=True)]


def codes_of(frames: Sequence[Frame]) -> np.ndarray:
    """frames -> their codes (rows, n)."""
    return np.stack([f.codes for f in frames], axis=1)


def low_of(frames: Sequence[Frame]) -> np.ndarray:
    """frames of a hybrid stream -> their low band (n, coefs)."""
    return np.stack([f.low for f in frames])
