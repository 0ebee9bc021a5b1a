"""Fixed-rate packing: codes of ``bits`` bits each, written back to back, most significant bit first.

Used by the transport (every packet has a known size) and by the container's fixed-rate mode."""
from __future__ import annotations

import numpy as np


def pack_codes(codes: np.ndarray, bits: int = 10) -> bytes:
    """codes (any shape) of ints in [0, 2**bits) -> ceil(codes.size * bits / 8) bytes, row-major order."""
    c = np.asarray(codes, dtype=np.int64).ravel()
    if c.size and (c.min() < 0 or c.max() >= 1 << bits):
        raise ValueError(f"codes must lie in [0, {1 << bits})")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    bitarr = ((c[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    return np.packbits(bitarr).tobytes()


def packed_size(count: int, bits: int = 10) -> int:
    return (count * bits + 7) // 8


def unpack_codes(data: bytes, count: int, bits: int = 10) -> np.ndarray:
    """Inverse of pack_codes: the first ``count`` codes as int64 (1-D). ValueError if data is too short."""
    need = packed_size(count, bits)
    if len(data) < need:
        raise ValueError(f"need {need} bytes for {count} codes, got {len(data)}")
    bitarr = np.unpackbits(np.frombuffer(data, dtype=np.uint8, count=need))[: count * bits]
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return bitarr.reshape(count, bits).astype(np.int64) @ weights
