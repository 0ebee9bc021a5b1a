"""``FrameEncoder``: audio -> ``Frame``s of one mode (the streaming encoder, plus the low band of a hybrid mode).

Push audio of any length; get every frame whose codes are complete. A stream that sends the pitch gives each
frame one frame (20 ms) late (``StreamingEncoder``); its low band, complete earlier, waits for it."""
from __future__ import annotations

import numpy as np

from ..model.streaming import StreamingEncoder
from .engine import model_tag
from .frames import Frame, frames_of
from .lowband import LowBandEncoder
from .modes import Mode


class FrameEncoder:
    """``push(samples) -> frames``, ``flush() -> the last frames``. ``tag``: the model's packet tag;
    ``low_band``: the hybrid mode's ``LowBand`` (None otherwise); after ``flush``, ``closing``: the low band's
    MDCT frame past the last frame (hybrid only), which a file stores and packets leave out."""

    def __init__(self, codec, mode: Mode):
        self.mode, self.tag = mode, model_tag(codec.model_id)
        self.neural = StreamingEncoder(codec, mode.rows)
        self.low_band = mode.layer()
        self.low = LowBandEncoder(self.low_band) if self.low_band is not None else None
        self.waiting: list[np.ndarray] = []  # low-band rows (coefs,) whose frame's codes are not out yet
        self.closing: np.ndarray | None = None

    def push(self, samples: np.ndarray) -> list[Frame]:
        """audio (T,) float32 -> the frames it completes."""
        if self.low is not None:
            self.waiting.extend(self.low.push(samples))
        return self._frames(self.neural.push(samples))

    def flush(self) -> list[Frame]:
        """The end of the input (its last partial frame zero-padded) -> the frames still held."""
        if self.low is not None:
            self.waiting.extend(self.low.flush())
        frames = self._frames(self.neural.flush())
        if self.waiting:
            self.closing = self.waiting.pop()
        return frames

    def _frames(self, codes: np.ndarray) -> list[Frame]:
        """codes (rows, n) -> frames, each with its low band (the oldest waiting rows)."""
        if self.low is None:
            return frames_of(codes)
        n = codes.shape[1]
        rows, self.waiting = self.waiting[:n], self.waiting[n:]
        return frames_of(codes, rows)
