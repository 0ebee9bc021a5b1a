"""The one bridge between the model and bytes: wav <-> codes <-> .acdc container.

Both directions run the streaming encoder/decoder over chunks of ``FRAMES_PER_CHUNK`` frames, so an
hour-long file is handled in bounded memory, and the result equals the offline ``Codec`` path."""
from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from .bitstream.container import FLAG_ENTROPY, HEADER_SIZE, FormatError, Header, encode_chunk, encode_header, read_chunks, read_header
from .bitstream.entropy import EntropyModel, decode_fixed, encode_fixed
from .errors import CodecError
from .model import BITRATES, Codec, default_weights_path
from .streaming import StreamingDecoder, StreamingEncoder

FRAMES_PER_CHUNK = 500  # 10 s per chunk


@dataclass
class Engine:
    """A codec and the entropy model fitted for it (None: fixed-rate only)."""
    codec: Codec
    entropy: EntropyModel | None

    @property
    def model_id(self) -> bytes:
        return bytes.fromhex(self.codec.model_id)[:8] if self.codec.model_id != "untrained" else b"\0" * 8


@functools.lru_cache(maxsize=4)
def load_engine(weights: str | None = None) -> Engine:
    """Load weights (default: the shipped model) and the entropy model beside them, if it matches."""
    path = weights or default_weights_path()
    if not os.path.isfile(path):
        raise CodecError(f"{path}: model weights not found")
    try:
        codec = Codec.load(path)
    except Exception as exc:
        raise CodecError(f"{path}: cannot load model weights ({exc})") from None
    ent_path = path.replace(".safetensors", ".entropy.npz")
    entropy = EntropyModel.load(ent_path) if os.path.isfile(ent_path) else None
    if entropy is not None and (entropy.model_id != codec.model_id or len(entropy.probs) < codec.max_rows):
        entropy = None
    return Engine(codec, entropy)


def n_q_for(kbps: float) -> int:
    try:
        return BITRATES[float(kbps)]
    except (KeyError, ValueError):
        raise CodecError(f"bitrate must be one of {', '.join(f'{k:g}' for k in BITRATES)} kbps, not {kbps}") from None


def encode_blocks(blocks: Iterable[np.ndarray], kbps: float, engine: Engine, entropy: bool = True) -> bytes:
    """Audio blocks (float32, 16 kHz mono) -> a complete .acdc byte string.

    Memory holds one block of audio and the compressed output (at most 1.5 kB per second at 12 kbps)."""
    n_q = n_q_for(kbps)
    use_entropy = entropy and engine.entropy is not None
    cfg = engine.codec.cfg
    enc = StreamingEncoder(engine.codec, n_q)
    chunks: list[bytes] = []
    pending = np.zeros((n_q, 0), dtype=np.int64)
    num_samples = 0

    used_range = False

    def emit(codes: np.ndarray) -> None:
        nonlocal used_range
        payload = encode_fixed(codes, cfg.bits_per_code)
        if use_entropy:  # range-code the chunk only where that is smaller than the fixed-rate codes
            ranged = engine.entropy.encode(codes, engine.codec.row_tables(n_q))
            if len(ranged) < len(payload):
                chunks.append(encode_chunk(codes.shape[1], ranged, range_coded=True))
                used_range = True
                return
        chunks.append(encode_chunk(codes.shape[1], payload))

    for block in blocks:
        num_samples += len(block)
        pending = np.concatenate([pending, enc.push(block)], 1)
        while pending.shape[1] >= FRAMES_PER_CHUNK:
            emit(pending[:, :FRAMES_PER_CHUNK])
            pending = pending[:, FRAMES_PER_CHUNK:]
    if num_samples == 0:
        raise CodecError("no audio to compress")
    pending = np.concatenate([pending, enc.flush()], 1)
    while pending.shape[1]:
        emit(pending[:, :FRAMES_PER_CHUNK])
        pending = pending[:, FRAMES_PER_CHUNK:]
    header = Header(cfg.sample_rate, 1, n_q, cfg.bits_per_code, cfg.frame_size, num_samples, engine.model_id,
                    FRAMES_PER_CHUNK, FLAG_ENTROPY if used_range else 0)
    return encode_header(header) + b"".join(chunks)


def check_model(header: Header, engine: Engine) -> None:
    cfg = engine.codec.cfg
    if header.model_id != engine.model_id:
        raise FormatError(f"file was made with model {header.model_id.hex()}, this is model {engine.model_id.hex()}")
    if header.n_q > engine.codec.max_rows or header.bits != cfg.bits_per_code or header.frame_size != cfg.frame_size:
        raise FormatError("file's codebook layout does not match the model")
    if header.entropy_coded and engine.entropy is None:
        raise FormatError("file is entropy-coded but no entropy model is installed for this model")


def decode_stream(f: BinaryIO, engine: Engine) -> tuple[Header, Iterator[np.ndarray]]:
    """Read the header now; return it and an iterator of decoded audio blocks (float32, exact length)."""
    header = read_header(f)
    check_model(header, engine)

    def blocks() -> Iterator[np.ndarray]:
        dec = StreamingDecoder(engine.codec)
        left = header.num_samples
        for n_frames, payload, ranged in read_chunks(f, header):
            if ranged:
                codes = engine.entropy.decode(payload, engine.codec.row_tables(header.n_q), n_frames)
            else:
                codes = decode_fixed(payload, header.n_q, n_frames, header.bits)
            out = dec.push(codes)[:left]
            left -= len(out)
            if len(out):
                yield out
        tail = dec.flush()[:left]
        if len(tail):
            yield tail

    return header, blocks()


def compress(wav: np.ndarray, kbps: float = 6.0, engine: Engine | None = None, entropy: bool = True) -> bytes:
    """float32 mono 16 kHz array -> .acdc bytes."""
    return encode_blocks([np.asarray(wav, dtype=np.float32)], kbps, engine or load_engine(), entropy)


def decompress(data: bytes, engine: Engine | None = None) -> np.ndarray:
    """.acdc bytes -> float32 mono 16 kHz array of the original length."""
    _, blocks = decode_stream(io.BytesIO(data), engine or load_engine())
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def read_info(f: BinaryIO) -> dict:
    """Header fields and sizes of a .acdc stream (validates every chunk's checksum; needs no model)."""
    header = read_header(f)
    chunks = list((len(p), r) for _, p, r in read_chunks(f, header))
    payload = sum(n + 12 for n, _ in chunks)
    size = HEADER_SIZE + payload
    return {
        "format_version": header.version,
        "model": header.model_id.hex(),
        "codebooks": header.n_q,
        "bitrate_kbps": header.n_q * header.bits * header.sample_rate / header.frame_size / 1000,
        "entropy_coded": header.entropy_coded,
        "chunks": len(chunks),
        "range_coded_chunks": sum(r for _, r in chunks),
        "sample_rate": header.sample_rate,
        "channels": header.channels,
        "samples": header.num_samples,
        "duration_s": header.duration,
        "size_bytes": size,
        "actual_kbps": 8 * size / header.duration / 1000,
    }
