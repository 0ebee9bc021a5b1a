"""Frame-by-frame encoder and decoder that give the same output as the offline path.

Pattern (after Moshi/Mimi's ``with model.streaming():``): the layers run the same ``forward`` offline and
streaming, and while streaming each keeps the state it needs in itself (``layers.StreamingModule``): a causal
conv its last ``kernel - stride`` inputs, the spectral branch and the pitch tracker their last samples, the
iSTFT head its running phase and overlap-add tail, the harmonic source its pitch, phase and last samples.
Each ``StreamingEncoder`` / ``StreamingDecoder`` streams on its own copy of the model's modules that shares
the weights (``layers.stream_copy``), so the model itself never streams: offline calls and other streams on
it (a sender's encoder and a receiver's decoder, in two threads) are untouched, whatever happens in a stream.
The caller feeds whole 20 ms frames (320 samples).

Algorithmic latency: 20 ms to fill a frame + 30 ms overlap-add tail in the decoder = 50 ms (the tail is the
head's window less its hop, ``CodecConfig.head_fft``); a stream that
sends the pitch (model/pitch.py) waits 20 ms more, for its tracker to hear past the frame (``latency_ms``).
"""
from __future__ import annotations

import numpy as np
import torch

from ..constants import FRAME
from .codec import Codec
from .layers import stream_copy
from .pitch import dequantize, frame_symbols, quantize

def latency_ms(codec: Codec, n_q: int) -> float:
    """Algorithmic latency of an ``n_q``-row stream: a frame (20 ms) and the decoder head's overlap tail
    (window - hop: 30 ms in the shipped model), plus the pitch tracker's lookahead when the stream sends the
    pitch."""
    ahead = codec.pitch.LOOKAHEAD * codec.pitch.HOP if codec.sends_pitch(n_q) else 0
    return 1000 * (FRAME + codec.head.n_fft - codec.head.hop + ahead) / codec.cfg.sample_rate


class StreamingEncoder:
    """Push any number of samples; get codes for every completed 20 ms frame.

    >>> enc = StreamingEncoder(codec, n_q=12)
    >>> codes = enc.push(samples)   # (n_q, frames_completed) int64

    A stream that sends the pitch (``Codec.sends_pitch``) gives each frame's codes one frame later: its pitch
    tracker hears 20 ms past the frame (``PitchTracker.LOOKAHEAD``), which adds 20 ms to the latency.
    """

    def __init__(self, codec: Codec, n_q: int):
        self.codec, self.n_q = codec, n_q
        self.model = stream_copy(codec)  # this stream's layers (the codec's weights)
        self.pending = np.zeros(0, dtype=np.float32)
        self.pitch = codec.sends_pitch(n_q)
        self.held = torch.zeros(1, n_q - 1, 0, dtype=torch.long)  # RVQ codes of frames whose pitch is not heard yet
        self.hz = torch.zeros(1, 0)                                  # tracker's pitch per 10 ms, not yet sent
        self.skip = codec.pitch.LOOKAHEAD if self.pitch else 0       # its first outputs describe before the start

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> np.ndarray:
        self.pending = np.concatenate([self.pending, np.asarray(samples, dtype=np.float32)])
        k = len(self.pending) // FRAME
        if k == 0:
            return np.zeros((self.n_q, 0), dtype=np.int64)
        chunk, self.pending = self.pending[: k * FRAME], self.pending[k * FRAME:]
        wav = torch.from_numpy(chunk)[None, None]
        z, late = self.model.encoder.parts(wav)
        if not self.pitch:
            return self.codec.quantizer.encode(z, self.n_q, late)[0].numpy()
        self.held = torch.cat([self.held, self.codec.quantizer.encode(z, self.n_q - 1, late)], 2)
        return self._hear(wav)

    def _hear(self, wav: torch.Tensor) -> np.ndarray:
        """Run the pitch tracker on more samples; return the codes of the frames whose pitch is now known."""
        hz = self.codec.pitch.to_hz(self.model.pitch(wav))
        drop = min(self.skip, hz.shape[1])
        self.hz, self.skip = torch.cat([self.hz, hz[:, drop:]], 1), self.skip - drop
        m = min(self.held.shape[2], self.hz.shape[1] // 2)
        out = torch.cat([frame_symbols(self.hz[:, :2 * m])[:, None], self.held[:, :, :m]], 1)
        self.hz, self.held = self.hz[:, 2 * m:], self.held[:, :, m:]
        return out[0].numpy()

    @torch.no_grad()
    def flush(self) -> np.ndarray:
        """Zero-pad the last partial frame (if any) and encode it; a pitch stream then hears 20 ms of zeros
        past the end, as the offline ``Codec.encode`` does, and gives its last frame."""
        out = [self.push(np.zeros(FRAME - len(self.pending), dtype=np.float32))] if len(self.pending) else []
        if self.pitch and self.held.shape[2]:
            out.append(self._hear(torch.zeros(1, 1, FRAME)))
        return np.concatenate(out, 1) if out else np.zeros((self.n_q, 0), dtype=np.int64)


class StreamingDecoder:
    """Push one frame of codes (or a latent vector) at a time; get the samples that became final.

    Output concatenated over all pushes plus ``flush()`` equals ``codec.decode`` of all codes up to float32
    rounding: matrix products over k frames round differently from those over the whole clip (1e-7 of the
    features), and the harmonic source integrates its pitch into a phase that its k-th harmonic multiplies
    by k, so where the stream has no sent pitch the difference grows slowly along it (1e-4 of a 0.26 peak
    after 4 s, 70 dB down). Run in float64 the two agree to 1e-8 of the peak (the streaming logic is exact).
    The same pushes in the same grouping give the same samples bit for bit.
    With the shipped head (a 640-sample window) the first push returns nothing, the second 160 samples, then
    320 per push, and flush returns 480; a head with a 480-sample window (``CodecConfig.head_fft``) gives 320
    from the second push on and 320 at the flush.
    ``postfilter``: None = the model's configured one, 1.0 = off (``Codec.decode``).
    """

    def __init__(self, codec: Codec, postfilter: float | None = None):
        self.codec, self.postfilter = codec, postfilter
        self.model = stream_copy(codec)  # this stream's layers (the codec's weights)
        self.last_latent: torch.Tensor | None = None
        self.last_symbol: torch.Tensor | None = None    # the pitch sent with the frame before (streams with pitch)

    def latent_of(self, codes: np.ndarray) -> torch.Tensor:
        """codes (n_q,) -> quantized latent (latent_dim,) (a pitch row is left out)."""
        c = torch.as_tensor(np.asarray(codes, dtype=np.int64))[None, :, None]
        with torch.no_grad():
            return self.codec.quantizer.decode(self.codec.split(c)[1])[0, :, 0]

    def pitch_of(self, codes: np.ndarray) -> torch.Tensor | None:
        """codes (n_q,) or (n_q, k) -> the sent pitch per 10 ms (1, 2k) in Hz, or None if the stream has none."""
        c = torch.as_tensor(np.asarray(codes, dtype=np.int64))
        symbols, _ = self.codec.split((c[:, None] if c.dim() == 1 else c)[None])
        return None if symbols is None else dequantize(symbols, self.last_symbol)

    @torch.no_grad()
    def push(self, codes: np.ndarray) -> np.ndarray:
        """codes (n_q,) for one frame, or (n_q, k) for k frames -> the samples that became final."""
        c = np.asarray(codes, dtype=np.int64)
        c = c[:, None] if c.ndim == 1 else c
        _, stages = self.codec.split(torch.from_numpy(c)[None])
        return self.push_latent(self.codec.quantizer.decode(stages)[0], self.pitch_of(c))

    @torch.no_grad()
    def push_latent(self, z: torch.Tensor, f0: torch.Tensor | None = None) -> np.ndarray:
        """z (latent_dim,) or (latent_dim, k) quantized latents, and the sent pitch (``pitch_of``) or None
        (the decoder's own) -> final samples (float32)."""
        z = z[:, None] if z.dim() == 1 else z
        self.last_latent = z[:, -1]
        self.last_symbol = None if f0 is None else quantize(f0[:, -1:])
        wav, _ = self.model.synthesize(self.model.features(z[None], f0), f0, self.postfilter)
        return wav[0, 0].numpy()

    def flush(self) -> np.ndarray:
        """The last overlap tail (all windows have arrived once the stream ends)."""
        return self.model.head.flush().flatten().numpy()
