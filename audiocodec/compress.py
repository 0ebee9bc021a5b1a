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

from .bitstream.container import CHUNK_LOW, FLAG_ENTROPY, HEADER_SIZE, HEADER_SIZE_V2, FormatError, Header, encode_chunk, encode_header, read_chunks, read_header
from .bitstream.entropy import EntropyModel, decode_fixed, encode_fixed
from .errors import CodecError
from .lowband import HYBRID_MODES, LowBand, LowBandDecoder, LowBandEncoder, layer as low_band_layer
from .model import BITRATES, Codec, default_weights_path
from .model.streaming import StreamingDecoder, StreamingEncoder

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


def hybrid_layers(kbps: float) -> tuple[float, LowBand]:
    """A hybrid bitrate -> (the neural layer's bitrate, the low-band layer)."""
    try:
        neural, cutoff, snr = HYBRID_MODES[float(kbps)]
    except (KeyError, ValueError):
        raise CodecError(f"hybrid bitrate must be one of {', '.join(f'{k:g}' for k in HYBRID_MODES)} kbps, not {kbps}") from None
    return neural, low_band_layer(cutoff, float(snr))


def encode_blocks(blocks: Iterable[np.ndarray], kbps: float, engine: Engine, entropy: bool = True,
                  hybrid: bool = False) -> bytes:
    """Audio blocks (float32, 16 kHz mono) -> a complete .acdc byte string. ``hybrid``: ``kbps`` is a
    hybrid bitrate (``HYBRID_MODES``): a lower neural bitrate plus the low band's waveform layer.

    Memory holds one block of audio and the compressed output (at most 1.5 kB per second at 12 kbps)."""
    layer = None
    if hybrid:
        kbps, layer = hybrid_layers(kbps)
    n_q = n_q_for(kbps)
    use_entropy = entropy and engine.entropy is not None
    cfg = engine.codec.cfg
    enc = StreamingEncoder(engine.codec, n_q)
    low_enc = LowBandEncoder(layer) if layer else None
    chunks: list[bytes] = []
    pending = np.zeros((n_q, 0), dtype=np.int64)
    low = np.zeros((0, layer.coefs if layer else 0))
    num_samples = 0

    used_range = False

    def emit(codes: np.ndarray, low_frames: np.ndarray | None) -> None:
        nonlocal used_range
        payload = encode_fixed(codes, cfg.bits_per_code)
        ranged = engine.entropy.encode(codes, engine.codec.row_tables(n_q)) if use_entropy else None
        if ranged is not None and len(ranged) < len(payload):  # range-coded only where that is smaller
            chunks.append(encode_chunk(codes.shape[1], ranged, range_coded=True))
            used_range = True
        else:
            chunks.append(encode_chunk(codes.shape[1], payload))
        if low_frames is not None:
            chunks.append(encode_chunk(len(low_frames), layer.encode_frames(low_frames), marker=CHUNK_LOW))

    def ready() -> bool:
        return pending.shape[1] >= FRAMES_PER_CHUNK and (layer is None or len(low) >= FRAMES_PER_CHUNK)

    for block in blocks:
        num_samples += len(block)
        pending = np.concatenate([pending, enc.push(block)], 1)
        if layer:
            low = np.concatenate([low, low_enc.push(block)])
        while ready():
            emit(pending[:, :FRAMES_PER_CHUNK], low[:FRAMES_PER_CHUNK] if layer else None)
            pending, low = pending[:, FRAMES_PER_CHUNK:], low[FRAMES_PER_CHUNK:]
    if num_samples == 0:
        raise CodecError("no audio to compress")
    pending = np.concatenate([pending, enc.flush()], 1)
    if layer:
        low = np.concatenate([low, low_enc.flush()])  # one frame more than the codes: the last goes with them
    while pending.shape[1]:
        n = min(FRAMES_PER_CHUNK, pending.shape[1])
        last = n == pending.shape[1]
        emit(pending[:, :n], (low if last else low[:n]) if layer else None)
        pending, low = pending[:, n:], low[n:]
    header = Header(cfg.sample_rate, 1, n_q, cfg.bits_per_code, cfg.frame_size, num_samples, engine.model_id,
                    FRAMES_PER_CHUNK, FLAG_ENTROPY if used_range else 0,
                    low_band_hz=layer.cutoff_hz if layer else 0, low_band_snr=int(layer.snr_db) if layer else 0)
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

    layer = low_band_layer(header.low_band_hz, float(header.low_band_snr)) if header.low_band_hz else None

    def blocks() -> Iterator[np.ndarray]:
        dec = StreamingDecoder(engine.codec)
        low_dec = LowBandDecoder(layer) if layer else None
        left = header.num_samples
        for n_frames, payload, ranged, low in read_chunks(f, header):
            if ranged:
                codes = engine.entropy.decode(payload, engine.codec.row_tables(header.n_q), n_frames)
            else:
                codes = decode_fixed(payload, header.n_q, n_frames, header.bits)
            out = dec.push(codes)
            if layer:  # the neural audio, cut at the original length as the offline path has it
                out = low_dec.push(out[:low_dec.room(header.num_samples)], layer.decode_frames(low[1], low[0]))
            out = out[:left]
            left -= len(out)
            if len(out):
                yield out
        tail = dec.flush()
        if layer:
            tail = low_dec.flush(tail[:low_dec.room(header.num_samples)])
        tail = tail[:left]
        if len(tail):
            yield tail

    return header, blocks()


def compress(wav: np.ndarray, kbps: float = 6.0, engine: Engine | None = None, entropy: bool = True,
             hybrid: bool = False) -> bytes:
    """float32 mono 16 kHz array -> .acdc bytes (``hybrid``: see ``encode_blocks``)."""
    return encode_blocks([np.asarray(wav, dtype=np.float32)], kbps, engine or load_engine(), entropy, hybrid)


def decompress(data: bytes, engine: Engine | None = None) -> np.ndarray:
    """.acdc bytes -> float32 mono 16 kHz array of the original length."""
    _, blocks = decode_stream(io.BytesIO(data), engine or load_engine())
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def read_info(f: BinaryIO) -> dict:
    """Header fields and sizes of a .acdc stream (validates every chunk's checksum; needs no model)."""
    header = read_header(f)
    chunks = list((len(p), r, len(low[1]) if low else None) for _, p, r, low in read_chunks(f, header))
    payload = sum(n + 12 for n, _, _ in chunks) + sum(n + 12 for _, _, n in chunks if n is not None)
    size = (HEADER_SIZE_V2 if header.low_band_hz else HEADER_SIZE) + payload
    info = {
        "format_version": header.version,
        "model": header.model_id.hex(),
        "codebooks": header.n_q,
        "bitrate_kbps": header.n_q * header.bits * header.sample_rate / header.frame_size / 1000,
        "entropy_coded": header.entropy_coded,
        "chunks": len(chunks),
        "range_coded_chunks": sum(r for _, r, _ in chunks),
    }
    if header.low_band_hz:  # a hybrid stream: its bitrate is the hybrid mode's (the neural layer's is kept apart)
        mode = (info["bitrate_kbps"], header.low_band_hz, header.low_band_snr)
        info.update(neural_kbps=info["bitrate_kbps"], hybrid=True,
                    bitrate_kbps=next((k for k, m in HYBRID_MODES.items() if m == mode), info["bitrate_kbps"]),
                    low_band_hz=header.low_band_hz, low_band_snr_db=header.low_band_snr,
                    low_band_kbps=8 * sum(n for _, _, n in chunks) / header.duration / 1000)
    return info | {
        "sample_rate": header.sample_rate,
        "channels": header.channels,
        "samples": header.num_samples,
        "duration_s": header.duration,
        "size_bytes": size,
        "actual_kbps": 8 * size / header.duration / 1000,
    }
