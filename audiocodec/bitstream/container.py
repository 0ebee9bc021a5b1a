"""The .acdc file format: a checksummed header, then self-contained checksummed chunks of codes.

Byte layout (all integers little-endian) is documented in docs/bitstream.md. Nothing here allocates
by a length read from the file before checking it against hard limits, so hostile files fail fast
with a FormatError (a CodecError: one line, no traceback)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import CodecError
from .packing import packed_size

MAGIC = b"ACDC"
VERSION = 1                      # the format version this code writes
READABLE_VERSIONS = (1,)         # versions this code reads
FLAG_ENTROPY = 0x01              # some chunks are range-coded: the model's entropy tables are needed
KNOWN_FLAGS = FLAG_ENTROPY

# magic, version, header_len, flags, sample_rate, channels, n_q, bits, frame_size, num_samples,
# model_id, frames_per_chunk, reserved (0); then crc32 of everything before it
_HEADER = struct.Struct("<4sBHBIBBBHQ8sHx")
HEADER_SIZE = _HEADER.size + 4   # 40 bytes
_CHUNK = struct.Struct("<2sHI")  # marker, n_frames, payload_len; then crc32, then payload
CHUNK_FIXED = b"CF"              # payload: fixed-rate packed codes
CHUNK_RANGE = b"CR"              # payload: range-coded codes (only in files with FLAG_ENTROPY)

MAX_SAMPLES = 16000 * 3600 * 24  # one day of 16 kHz audio
MAX_FRAMES_PER_CHUNK = 3000      # one minute of 20 ms frames
MAX_HEADER = 4096


class FormatError(CodecError):
    """The bytes are not a valid .acdc stream (or not one this version can read)."""


@dataclass(frozen=True)
class Header:
    sample_rate: int
    channels: int
    n_q: int                     # codebooks used per frame
    bits: int                    # bits per code in fixed-rate mode (log2 codebook size)
    frame_size: int              # samples per frame
    num_samples: int             # original length in samples
    model_id: bytes              # 8 bytes: first half of the weights' SHA-256 digest
    frames_per_chunk: int
    flags: int = FLAG_ENTROPY
    version: int = VERSION

    @property
    def entropy_coded(self) -> bool:
        return bool(self.flags & FLAG_ENTROPY)

    @property
    def num_frames(self) -> int:
        return -(-self.num_samples // self.frame_size)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def fixed_payload(self, n_frames: int) -> int:
        return packed_size(n_frames * self.n_q, self.bits)


def encode_header(h: Header) -> bytes:
    body = _HEADER.pack(MAGIC, h.version, HEADER_SIZE, h.flags, h.sample_rate, h.channels, h.n_q, h.bits,
                        h.frame_size, h.num_samples, h.model_id, h.frames_per_chunk)
    return body + struct.pack("<I", zlib.crc32(body))


def _read_exact(f, n: int, what: str) -> bytes:
    data = f.read(n)
    if data is None or len(data) != n:
        raise FormatError(f"truncated file: {what} cut short")
    return data


def read_header(f) -> Header:
    """Read and validate the header from a binary file object."""
    first = f.read(_HEADER.size)
    if not first:
        raise FormatError("empty file")
    if len(first) < 4 or first[:4] != MAGIC:
        raise FormatError("not an audiocodec file (bad magic)")
    if len(first) < 7:
        raise FormatError("truncated file: header cut short")
    version, header_len = first[4], struct.unpack_from("<H", first, 5)[0]
    if version not in READABLE_VERSIONS:
        newer = version > max(READABLE_VERSIONS)
        raise FormatError(f"format version {version} is {'newer than this audiocodec reads (upgrade audiocodec)' if newer else 'not supported'}")
    if not HEADER_SIZE <= header_len <= MAX_HEADER:
        raise FormatError(f"bad header length {header_len}")
    if len(first) < _HEADER.size:
        raise FormatError("truncated file: header cut short")
    rest = _read_exact(f, header_len - _HEADER.size, "header")
    body, crc = first + rest[:-4], struct.unpack("<I", rest[-4:])[0]
    if zlib.crc32(body) != crc:
        raise FormatError("header checksum mismatch (file is corrupted)")
    (_, version, _, flags, sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc) = _HEADER.unpack(first)
    h = Header(sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc, flags, version)
    _check(h)
    return h


def _check(h: Header) -> None:
    if h.flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{h.flags:02x}")
    if h.sample_rate != 16000 or h.channels != 1:
        raise FormatError(f"unsupported layout: {h.sample_rate} Hz, {h.channels} channel(s)")
    if not 1 <= h.bits <= 16 or not 1 <= h.n_q <= 64 or not 1 <= h.frame_size <= 16000:
        raise FormatError("header values out of range")
    if not 0 < h.num_samples <= MAX_SAMPLES:
        raise FormatError(f"absurd length of {h.num_samples} samples")
    if not 1 <= h.frames_per_chunk <= MAX_FRAMES_PER_CHUNK:
        raise FormatError(f"absurd chunk size of {h.frames_per_chunk} frames")


def encode_chunk(n_frames: int, payload: bytes, range_coded: bool = False) -> bytes:
    head = _CHUNK.pack(CHUNK_RANGE if range_coded else CHUNK_FIXED, n_frames, len(payload))
    return head + struct.pack("<I", zlib.crc32(head + payload)) + payload


def read_chunks(f, h: Header):
    """Yield (n_frames, payload, range_coded) for every chunk, checking sizes, checksums and the frame total."""
    remaining, index = h.num_frames, 0
    while remaining > 0:
        head = f.read(_CHUNK.size + 4)
        if len(head) < _CHUNK.size + 4:
            raise FormatError(f"truncated file: chunk {index} missing ({remaining} frames short)")
        magic, n_frames, plen = _CHUNK.unpack_from(head)
        ranged = magic == CHUNK_RANGE
        if magic not in (CHUNK_FIXED, CHUNK_RANGE) or (ranged and not h.entropy_coded):
            raise FormatError(f"chunk {index}: bad chunk marker (file is corrupted)")
        if not 1 <= n_frames <= min(h.frames_per_chunk, remaining):
            raise FormatError(f"chunk {index}: bad frame count {n_frames}")
        fixed = h.fixed_payload(n_frames)
        if (ranged and (plen >= fixed or plen % 4)) or (not ranged and plen != fixed):
            raise FormatError(f"chunk {index}: bad payload length {plen}")
        payload = _read_exact(f, plen, f"chunk {index}")
        if zlib.crc32(head[:_CHUNK.size] + payload) != struct.unpack_from("<I", head, _CHUNK.size)[0]:
            raise FormatError(f"chunk {index}: checksum mismatch (file is corrupted)")
        yield n_frames, payload, ranged
        remaining -= n_frames
        index += 1
    if f.read(1):
        raise FormatError("unexpected bytes after the last chunk")
