"""Analysis by synthesis (``compress --search STEPS``): codes searched for, not only computed.

The encoder maps audio to a latent in one pass, and the quantizer codes that latent. But the latent the encoder
gives is not the one the decoder renders best: moving the 6 kbps latent by gradient descent on the training
losses, with the decoder fixed, lifted PESQ-WB from 2.49 to 2.74 on six train excerpts
(``research/probe_latent_headroom.py``).
So, as CELP speech coders choose their excitation by decoding the candidates, the sender can decode, compare
with its input and move the codes: each step decodes the codes of a moved latent, measures the training losses
(log-mel and compressed magnitude) against the input, and moves the latent along their gradient (straight
through the quantizer); the codes of the best step are sent. The decoder and the bitstream stay as they are, so
any receiver decodes the result; only encoding is slower (``STEPS`` decoder passes and their gradients).

Chunk by chunk (``compress.FRAMES_PER_CHUNK``): each chunk's search decodes the ``PREFIX`` frames of codes before it
first, as the receiver's decoder will have heard them, and measures only its own samples.

Each step codes the moved latent as the encoder's latent is coded: the stages before the spectral branch joins
code it without the branch. (Coded greedily from the first stage with the branch inside, 3 kbps lost what 6 and
12 kbps gained.) Only streams of ``modes.SEARCH_ROWS`` rows or more (3, 6 and 12 kbps and the hybrid modes'
neural layer; ``Mode.searchable``): on held-out clips 30 steps lifted every judge there, while at 1.5 kbps, whose
three coarse stages change in jumps the straight-through gradient does not foresee, they lowered PESQ-WB and
STOI (docs/training-log.md). In a hybrid stream the losses measure the decoded audio with the input's own band
below the cutoff in place, as the receiver puts the sent low band there (``low_part``)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..model import Codec
from ..model.pitch import dequantize
from ..train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss
from .frames import Frame, codes_of
from .lowband import HOP, LowBand, frames_for

PREFIX = 100         # frames before a chunk that its search decodes first: the decoder backbone hears 86 frames back
MEL, CMAG = 30.0, 150.0  # the losses' weights, as in training (scripts/train.py)
LEARNING_RATE = 0.8      # Adam's step on the latent (whose RMS is about 13): 0.05 gained half as much in 30 steps
SPAN = 2048              # the fewest samples measured: the log-mel loss's longest window (shorter input is sent as encoded)


def low_part(layer: LowBand, y: torch.Tensor) -> torch.Tensor:
    """The band of ``y`` (1, 1, T) that a hybrid stream's low band replaces: its first ``layer.coefs`` MDCT
    coefficients and back (``LowBand.imdct(LowBand.mdct(y))``, differentiable)."""
    n, basis = y.shape[-1], torch.from_numpy(layer.basis.T.astype(np.float32))[:, None, :]  # (coefs, 1, 2 HOP)
    padded = F.pad(y, (HOP, frames_for(n) * HOP - n))
    return F.conv_transpose1d(F.conv1d(padded, basis, stride=HOP), basis, stride=HOP)[..., HOP:HOP + n]


class AdamStep:
    """Adam (Kingma & Ba, torch.optim.Adam's defaults) on one tensor, in place: ``step(grad)``. Written out
    because ``torch.optim``'s first optimizer imports ``torch._dynamo``, 0.5-0.9 s per process: ``compress
    --search 30`` of a 5 s file took 5.7 s with it and 5.2 s without, for the same bytes (a test holds it
    equal to ``torch.optim.Adam``)."""

    def __init__(self, param: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps, self.t = param, lr, betas, eps, 0
        self.m, self.v = torch.zeros_like(param), torch.zeros_like(param)

    @torch.no_grad()
    def __call__(self, grad: torch.Tensor) -> None:
        (b1, b2), self.t = self.betas, self.t + 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / (1 - b2 ** self.t) ** 0.5).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))


def search_codes(codec: Codec, wav: np.ndarray, codes: np.ndarray, prefix: np.ndarray, steps: int,
                 lr: float = LEARNING_RATE, low: LowBand | None = None) -> np.ndarray:
    """The codes (rows, n) of ``wav`` (n * frame_size samples, after the prefix's) improved by ``steps`` steps of
    search, given the codes ``prefix`` (rows, p) before them and ``wav`` starting at the prefix (p + n frames of
    samples). The pitch row is kept; the stages' codes are those of the step whose decoded audio was closest to
    the input by the training losses, the encoder's own if no step beat them (or if there are fewer than ``SPAN``
    samples in all). ``low``: a hybrid stream's low band, which the receiver puts in place of the decoder's own
    below its cutoff; the losses then measure the decoded audio with the input's band there."""
    frame, p = codec.cfg.frame_size, prefix.shape[1]
    total = (p + codes.shape[1]) * frame
    if steps == 0 or total < SPAN:
        return codes
    start = min(p * frame, total - SPAN)  # a short last chunk is measured with the end of its prefix
    mel, cmag = MultiScaleMelLoss(), CompressedMagnitudeLoss()
    joined = torch.from_numpy(np.concatenate([prefix, codes], 1)).long()[None]
    symbols, stages = codec.split(joined)
    f0 = None if symbols is None else dequantize(symbols)
    audio = torch.from_numpy(np.asarray(wav, np.float32))[None, None]
    x = audio[..., start:]
    kept = None if low is None else low_part(low, audio)
    n_stages, branch = stages.shape[1], codec.encoder.spectral
    with torch.no_grad():
        z = codec.quantizer.decode(stages)
        # the spectral branch's part of the chunk's latent, where the stream's stages reach its join
        late = branch(audio)[..., p:] if branch is not None and n_stages > codec.quantizer.join else None
    before, latent = z[..., :p], z[..., p:].clone().requires_grad_(True)

    def coded_as_sent(target: torch.Tensor) -> torch.Tensor:
        """A latent's codes, the stages before the join coding it without the branch (see the module)."""
        return codec.quantizer.encode(target if late is None else target - late, n_stages, late)

    def loss_of(z_chunk: torch.Tensor) -> torch.Tensor:
        y = codec.synthesize(codec.features(torch.cat([before, z_chunk], -1), f0), f0)[0]
        if kept is not None:
            y = y - low_part(low, y) + kept
        y = y[..., start:]
        return MEL * mel(y, x) + CMAG * cmag(y, x)

    with torch.no_grad():
        best, best_codes = float(loss_of(latent)), stages[:, :, p:]
    step = AdamStep(latent, lr)
    with torch.enable_grad():
        for _ in range(steps):
            found = coded_as_sent(latent.detach())
            coded = codec.quantizer.decode(found)
            loss = loss_of(latent + (coded - latent).detach())  # the codes' audio; the gradient straight through
            if float(loss.detach()) < best:
                best, best_codes = float(loss.detach()), found
            step(*torch.autograd.grad(loss, [latent]))
    out = best_codes[0].numpy()
    return out if symbols is None else np.concatenate([codes[:1], out])


class CodeSearch:
    """The search over a stream's chunks: ``hear`` the input audio as it comes, ``refine`` each chunk's frames
    (in order, from the stream's first frame) into frames with searched codes (the low band kept: ``low``, the
    hybrid stream's, tells the search which band the receiver replaces)."""

    def __init__(self, codec: Codec, steps: int, low: LowBand | None = None):
        self.codec, self.steps, self.low = codec, steps, low
        self.audio = np.zeros(0, np.float32)   # input samples from the prefix's first frame on
        self.prefix: np.ndarray | None = None  # the last PREFIX frames of codes sent

    def hear(self, block: np.ndarray) -> None:
        self.audio = np.concatenate([self.audio, np.asarray(block, np.float32)])

    def refine(self, frames: list[Frame]) -> list[Frame]:
        codes = codes_of(frames)
        prefix = codes[:, :0] if self.prefix is None else self.prefix
        frame = self.codec.cfg.frame_size
        need = (prefix.shape[1] + codes.shape[1]) * frame
        wav = self.audio[:need]
        wav = np.pad(wav, (0, need - len(wav)))  # the last frame's samples past the end: zeros, as the encoder saw
        found = search_codes(self.codec, wav, codes, prefix, self.steps, low=self.low)
        self.prefix = np.concatenate([prefix, found], 1)[:, -PREFIX:]
        drop = (prefix.shape[1] + codes.shape[1] - self.prefix.shape[1]) * frame
        self.audio = self.audio[drop:]
        return [Frame(c, f.low) for c, f in zip(found.T, frames)]
