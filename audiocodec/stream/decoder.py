"""``FrameDecoder``: ``Frame``s -> audio, for a file (frames a chunk at a time) and for the network (a frame at
a time, or a stand-in for one that was lost).

Concealment works in the latent domain: a lost frame is decoded from a stand-in latent, so the decoder's
convolution state and overlap-add tail stay continuous and the next good frame joins smoothly. The stand-in
is the last good latent for the first lost frame (speech is locally stationary), then slides towards the
latent of silence by ``DECAY`` per further lost frame, so a long gap fades out instead of buzzing. (Chosen by
measurement: against the clean decode, at 10% random and 20% bursty loss, holding longer (0.8 -> 0.9) scored
higher PESQ and STOI than fading fast (0.3, 0.6), and a latent pattern-matching predictor (continue from the
past frame most like the last one) scored lower.) ``mute=True`` is the baseline without concealment: the
latent of silence straight away.

A hybrid stream (``use_low_band``) puts each frame's sent low band in place of the neural audio's own, one
frame (20 ms) later (``lowband.LowBandDecoder``); a lost frame keeps the neural concealment's own."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch

from ..constants import FRAME
from ..model.streaming import StreamingDecoder
from .engine import model_tag
from .frames import Frame, codes_of
from .lowband import LowBand, LowBandDecoder

DECAY = 0.9  # share of the last good latent kept per further consecutive lost frame


class FrameDecoder:
    """``decode(frames)``, ``conceal()`` and ``flush()`` each return the samples that became final.

    ``length``: the stream's exact sample count when known in advance (a file): the output stops there, and
    the neural audio is cut there before its low band is replaced, as the offline path has it. ``postfilter``:
    the decoder's postfilter exponent (None: the model's own; 1: off). ``tag``: the model's packet tag;
    ``max_rows``: the most rows of codes a frame may have."""

    def __init__(self, codec, length: int | None = None, postfilter: float | None = None, decay: float = DECAY,
                 mute: bool = False):
        self.codec, self.length, self.decay, self.mute = codec, length, decay, mute
        self.tag, self.max_rows = model_tag(codec.model_id), codec.max_rows
        self.neural = StreamingDecoder(codec, postfilter=postfilter)
        self.low: LowBandDecoder | None = None
        self.good: torch.Tensor | None = None  # the last good frame's latent
        self.run = 0                           # consecutive frames concealed so far
        self.written = 0                       # samples returned so far

    def use_low_band(self, layer: LowBand) -> None:
        """The stream is hybrid: from the first frame on, put the sent low band in place (20 ms later)."""
        self.low = LowBandDecoder(layer)

    def decode(self, frames: Sequence[Frame]) -> np.ndarray:
        """Frames that arrived, decoded in one step (a file's chunk; the receiver's one frame)."""
        y = self.neural.push(codes_of(frames))
        self.good, self.run = self.neural.last_latent, 0
        return self._out(y, [f.low for f in frames])

    def conceal(self) -> np.ndarray:
        """A stand-in for one lost frame."""
        base = self.good if self.good is not None and not self.mute else self.silence
        keep = self.decay ** self.run  # 1 for the first lost frame, then decaying
        self.run += 1
        return self._out(self.neural.push_latent(self.silence + keep * (base - self.silence)), [None])

    def flush(self, closing: np.ndarray | None = None) -> np.ndarray:
        """The rest, once the stream has ended; ``closing``: the low band's MDCT frame past the last frame, if
        the stream has it (a hybrid file does; packets do not: the neural band stays there)."""
        return self._out(self.neural.flush(), [closing], last=True)

    @functools.cached_property
    def silence(self) -> torch.Tensor:
        """The quantized latent of 20 ms of silence: where concealment fades to."""
        with torch.no_grad():
            codes = self.codec.encode(torch.zeros(4 * FRAME), self.codec.cfg.n_codebooks)[0, :, -1].numpy()
        return self.neural.latent_of(codes)

    def _out(self, y: np.ndarray, rows: list, last: bool = False) -> np.ndarray:
        """Neural audio -> with the low band replaced (hybrid), cut at ``length``."""
        if self.low is not None:
            if self.length is not None:
                y = y[:self.low.room(self.length)]
            y = (self.low.flush if last else self.low.push)(y, self._rows(rows))
        if self.length is not None:
            y = y[:max(0, self.length - self.written)]
        self.written += len(y)
        return y

    def _rows(self, rows: list) -> np.ndarray:
        """Low-band rows (n, coefs); a missing one (lost, or another layer's) NaN: the neural band stays."""
        coefs = self.low.layer.coefs
        return np.stack([row if row is not None and row.shape == (coefs,) else np.full(coefs, np.nan)
                         for row in rows])
