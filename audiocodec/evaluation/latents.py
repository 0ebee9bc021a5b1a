"""The encoder on its own: audio -> continuous latents (before quantization) and the codes, as an .npz.

This is the "detach the encoder and use it on new data" use of an autoencoder: the 128-d latent every
20 ms is a compact learned feature of the audio, usable for clustering, visualisation or other models.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from .. import output


def encode_latents(wav: np.ndarray, kbps: float = 6.0, weights: str | None = None) -> dict[str, np.ndarray]:
    """float32 mono 16 kHz -> {'latents' (128, frames) float32, 'codes' (n_q, frames) int16, metadata}."""
    from . import product

    n_q = product.n_q(kbps)
    codec = product.engine(weights).codec
    x = torch.from_numpy(np.asarray(wav, dtype=np.float32))
    latents = codec.encode_latents(x)[0].cpu().numpy().astype(np.float32)
    codes = codec.encode(x, n_q)[0].cpu().numpy().astype(np.int16)
    cfg = codec.cfg
    return {"latents": latents, "codes": codes, "frame_rate": np.float64(cfg.frame_rate),
            "sample_rate": np.int64(cfg.sample_rate), "num_samples": np.int64(len(wav)),
            "kbps": np.float64(kbps), "model_id": np.array(codec.model_id)}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz archive to exactly ``path`` (atomically; np.savez would append '.npz')."""
    output.atomic_write(path, npz_bytes(arrays))
