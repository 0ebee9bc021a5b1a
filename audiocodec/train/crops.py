"""What one training step sees: random crops of the split (with their pitch targets), or, for a frozen
encoder, crops of its latents computed once (``--latent-cache``)."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

from ..constants import FRAME
from .dataset import F0_HOP, pitch_targets

GAINS_DB = (-12.0, -4.0, 4.0)  # levels of the frozen encoder's precomputed latents


def crop_starts(n: int, length: int, total: int, rng: np.random.Generator) -> np.ndarray:
    """n crop starts, uniform over a split of ``total`` samples, on the pitch track's grid (F0_HOP samples)."""
    return rng.integers(0, (total - length) // F0_HOP, n) * F0_HOP


def batch_of_crops(audio: np.ndarray, n: int, length: int, rng: np.random.Generator,
                   f0: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n random crops (n, 1, length) of int16 ``audio`` at random levels (-12 .. +4 dB) and, given the split's
    pitch track (J[, 2]), their ``pitch_targets`` (n, length / 160[, 2])."""
    starts = crop_starts(n, length, len(audio), rng)
    x = np.stack([audio[s:s + length] for s in starts]).astype(np.float32) / 32768.0
    gain = 10 ** (rng.uniform(-12, 4, (n, 1)) / 20)
    wav = torch.from_numpy(np.clip(x * gain, -1, 1).astype(np.float32))[:, None]
    return wav, None if f0 is None else torch.from_numpy(pitch_targets(f0, starts, length))


@torch.no_grad()
def encode_split(model, audio: np.ndarray, out: str, device: str, chunk: int = 160000) -> torch.Tensor:
    """The frozen encoder's latents of the whole split at each of GAINS_DB, computed once (10 s chunks, cached
    in ``out`` under a hash of the encoder) -> (gains, latent_dim, frames) float16."""
    from tqdm import tqdm

    seanet = [p for n, p in model.encoder.named_parameters() if not n.startswith("spectral.")]
    key = hashlib.sha256(b"".join(p.detach().cpu().numpy().tobytes() for p in seanet)).hexdigest()[:16]
    cache = os.path.join(out, f"latents-{key}.pt")
    if os.path.exists(cache):
        return torch.load(cache)
    n, was_training = len(audio) // chunk * chunk, model.training
    model.eval()
    z = []
    for gain in GAINS_DB:
        parts = []
        for s in tqdm(range(0, n, 8 * chunk), desc=f"latents at {gain:+g} dB"):
            x = np.clip(audio[s:min(n, s + 8 * chunk)].reshape(-1, 1, chunk) / 32768.0 * 10 ** (gain / 20), -1, 1)
            y = model.encoder.waveform(torch.from_numpy(x.astype(np.float32)).to(device))  # (8, latent, frames)
            parts.append(y.transpose(0, 1).reshape(y.shape[1], -1).half().cpu())
        z.append(torch.cat(parts, 1))
    model.train(was_training)
    z = torch.stack(z)
    torch.save(z, cache + ".tmp")
    os.replace(cache + ".tmp", cache)
    return z


def batch_of_latents(audio: np.ndarray, z: torch.Tensor, n: int, length: int, rng: np.random.Generator,
                     f0: np.ndarray | None, frame: int = FRAME):
    """Like batch_of_crops, from ``encode_split``'s latents: (wav (n, 1, length), pitch targets or None,
    latents (n, latent_dim, length / frame))."""
    frames = length // frame
    starts = rng.integers(0, z.shape[-1] - frames, n)
    gains = rng.integers(0, len(GAINS_DB), n)
    x = np.stack([audio[s * frame:s * frame + length] for s in starts]).astype(np.float32) / 32768.0
    x = np.clip(x * 10 ** (np.array(GAINS_DB)[gains, None] / 20), -1, 1).astype(np.float32)
    lat = torch.stack([z[g, :, s:s + frames] for g, s in zip(gains, starts)]).float()
    targets = None if f0 is None else torch.from_numpy(pitch_targets(f0, starts * frame, length))
    return torch.from_numpy(x)[:, None], targets, lat
