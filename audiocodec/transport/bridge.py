"""The one place where the streaming codec meets the transport (imports torch through ``audiocodec.streaming``).

``StreamEncoder`` and ``StreamDecoder`` give the sender and receiver the small interfaces they expect.
The decoder also conceals lost frames in the latent domain: it feeds the streaming decoder a stand-in
latent, so the decoder's convolution state and overlap-add tail stay continuous and the next good frame
joins smoothly. The stand-in is the last good latent for the first lost frame (speech is locally
stationary), then slides towards the latent of silence by ``DECAY`` per further lost frame, so a long
gap fades out instead of buzzing. (Chosen by measurement: against the clean decode, at 10% random and 20%
bursty loss, holding longer (0.8 -> 0.9) scored higher PESQ and STOI than fading fast (0.3, 0.6), and a
latent pattern-matching predictor (continue from the past frame most like the last one) scored lower.) ``mute=True`` is the baseline without concealment: the latent of silence
straight away (the benchmark compares the two).
"""
from __future__ import annotations

import numpy as np
import torch

from ..model import Codec
from ..streaming import FRAME, StreamingDecoder, StreamingEncoder
from .packets import model_tag

DECAY = 0.9  # share of the last good latent kept per further consecutive lost frame


class StreamEncoder:
    def __init__(self, codec: Codec, n_q: int):
        self.n_q, self.model_tag = n_q, model_tag(codec.model_id)
        self.enc = StreamingEncoder(codec, n_q)

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self.enc.push(samples)

    def flush(self) -> np.ndarray:
        """The frame a look-ahead stream (one that sends the pitch) still holds once the input ends."""
        return self.enc.flush()


class StreamDecoder:
    def __init__(self, codec: Codec, decay: float = DECAY, mute: bool = False):
        self.codec, self.decay, self.mute = codec, decay, mute
        self.model_tag = model_tag(codec.model_id)
        self.dec = StreamingDecoder(codec)
        self.max_codebooks = codec.max_rows
        self.run = 0                       # consecutive frames concealed so far
        self.good: torch.Tensor | None = None
        with torch.no_grad():              # the quantized latent of 20 ms of silence: where concealment fades to
            codes = codec.encode(torch.zeros(4 * FRAME), codec.cfg.n_codebooks)[0, :, -1].numpy()
        self.silence = self.dec.latent_of(codes)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        z = self.dec.latent_of(codes)
        self.good, self.run = z, 0
        return self.dec.push_latent(z, self.dec.pitch_of(codes))

    def conceal(self) -> np.ndarray:
        base = self.good if self.good is not None and not self.mute else self.silence
        keep = self.decay ** self.run      # 1 for the first lost frame, then decaying
        self.run += 1
        return self.dec.push_latent(self.silence + keep * (base - self.silence))

    def flush(self) -> np.ndarray:
        return self.dec.flush()
