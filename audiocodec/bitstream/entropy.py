"""Entropy coding of codes with a range coder (constriction) and per-codebook code frequencies.

The frequencies are counted on the training data (``scripts/export.py``) and shipped beside the weights,
tagged with the model id they were fitted for. A chunk's codes (n_q, frames) are coded stage by stage,
each stage with its own categorical model; every symbol keeps a non-zero probability, so any code is
representable."""
from __future__ import annotations

import numpy as np

from ..errors import CodecError
from .container import FormatError
from .packing import pack_codes, unpack_codes


class EntropyModel:
    """Per-stage categorical distributions: counts (n_codebooks, codebook_size), as counted."""

    def __init__(self, counts: np.ndarray, model_id: str):
        self.counts = np.asarray(counts)
        counts = self.counts.astype(np.float64) + 1.0  # add-one: every code stays codable
        self.probs = counts / counts.sum(1, keepdims=True)
        self.model_id = model_id
        import constriction

        self._models = [constriction.stream.model.Categorical(p, perfect=False) for p in self.probs]

    @staticmethod
    def load(path: str) -> "EntropyModel":
        try:
            with np.load(path, allow_pickle=False) as d:
                return EntropyModel(d["counts"], str(d["model_id"]))
        except (OSError, KeyError, ValueError) as exc:
            raise CodecError(f"{path}: cannot read entropy model ({exc})") from None

    @staticmethod
    def save(path: str, counts: np.ndarray, model_id: str) -> None:
        np.savez_compressed(path, counts=np.asarray(counts, dtype=np.int64), model_id=np.array(model_id))

    def bits_per_code(self) -> np.ndarray:
        """Entropy of each stage's distribution, in bits (what range coding costs on average)."""
        return -(self.probs * np.log2(self.probs)).sum(1)

    def encode(self, codes: np.ndarray, tables: list[int]) -> bytes:
        """codes (n_q, frames), row ``i`` coded with table ``tables[i]`` (``Codec.row_tables``) -> range-coded
        bytes (a whole number of 32-bit words)."""
        import constriction

        enc = constriction.stream.queue.RangeEncoder()
        for t, row in zip(tables, np.asarray(codes), strict=True):
            enc.encode(row.astype(np.int32), self._models[t])
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, tables: list[int], frames: int) -> np.ndarray:
        """Inverse of ``encode``: (len(tables), frames) codes."""
        import constriction

        if len(data) % 4:
            raise FormatError("entropy-coded payload is not a whole number of words")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        try:
            rows = [dec.decode(self._models[t], frames) for t in tables]
        except Exception:
            raise FormatError("entropy-coded payload does not decode") from None
        return np.stack(rows).astype(np.int64)


def encode_fixed(codes: np.ndarray, bits: int) -> bytes:
    """codes (n_q, frames) -> fixed-rate bytes, frame-major so a truncated payload loses whole frames last."""
    return pack_codes(np.asarray(codes).T, bits)


def decode_fixed(data: bytes, n_q: int, frames: int, bits: int) -> np.ndarray:
    return unpack_codes(data, n_q * frames, bits).reshape(frames, n_q).T
