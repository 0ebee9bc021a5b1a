"""The .acdc file format: a checksummed header, then self-contained checksummed chunks of codes (and, in
version 2, each followed by a chunk of the low band's waveform layer, ``stream/lowband.py``).

Byte layout (all integers little-endian) is documented in docs/bitstream.md. Nothing here allocates
by a length read from the file before checking it against hard limits, so hostile files fail fast
with a FormatError (a CodecError: one line, no traceback)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..constants import SAMPLE_RATE
from ..errors import CodecError
from .packing import packed_size

MAGIC = b"ACDC"
VERSION = 1                      # the format version of a file without the low-band layer
VERSION_LOW_BAND = 2             # ... and with it (version 1 readers cannot skip that layer)
READABLE_VERSIONS = (1, 2)       # versions this code reads
FLAG_ENTROPY = 0x01              # some chunks are range-coded: the model's entropy tables are needed
KNOWN_FLAGS = FLAG_ENTROPY

# magic, version, header_len, flags, sample_rate, channels, n_q, bits, frame_size, num_samples,
# model_id, frames_per_chunk, reserved (0); then crc32 of everything before it
_HEADER = struct.Struct("<4sBHBIBBBHQ8sHx")
HEADER_SIZE = _HEADER.size + 4   # 40 bytes
# version 2: byte 35 is the low band's cutoff in 200 Hz units, then its SNR in dB and 3 reserved bytes
_HEADER_V2 = struct.Struct("<4sBHBIBBBHQ8sHBB3x")
HEADER_SIZE_V2 = _HEADER_V2.size + 4  # 44 bytes
_CHUNK = struct.Struct("<2sHI")  # marker, n_frames, payload_len; then crc32, then payload
CHUNK_OVERHEAD = _CHUNK.size + 4  # 12 bytes of framing per chunk, before its payload
CHUNK_FIXED = b"CF"              # payload: fixed-rate packed codes
CHUNK_RANGE = b"CR"              # payload: range-coded codes (only in files with FLAG_ENTROPY)
CHUNK_LOW = b"LB"                # payload: the range-coded low band of the codes chunk before it (version 2)

MAX_SAMPLES = SAMPLE_RATE * 3600 * 24  # one day of audio
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
    low_band_hz: int = 0         # version 2: the waveform layer's cutoff (a multiple of 200 Hz); 0: none
    low_band_snr: int = 0        # version 2: its signal-to-noise ratio in dB

    def __post_init__(self):
        if self.low_band_hz and self.version == VERSION:  # a low band needs version 2
            object.__setattr__(self, "version", VERSION_LOW_BAND)

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

    def low_payload_max(self, n_frames: int) -> int:
        """Bound on a low-band chunk's payload: 4 bytes per coefficient and frame, far above what any
        signal costs (about 3 bits per coefficient at 20 dB)."""
        return 64 + 4 * n_frames * (self.low_band_hz // 25)


def encode_header(h: Header) -> bytes:
    fields = (h.flags, h.sample_rate, h.channels, h.n_q, h.bits, h.frame_size, h.num_samples, h.model_id,
              h.frames_per_chunk)
    if h.version == VERSION_LOW_BAND:
        body = _HEADER_V2.pack(MAGIC, h.version, HEADER_SIZE_V2, *fields, h.low_band_hz // 200, h.low_band_snr)
    else:
        body = _HEADER.pack(MAGIC, h.version, HEADER_SIZE, *fields)
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
    layout = _HEADER_V2 if version == VERSION_LOW_BAND else _HEADER
    if not layout.size + 4 <= header_len <= MAX_HEADER:
        raise FormatError(f"bad header length {header_len}")
    if len(first) < _HEADER.size:
        raise FormatError("truncated file: header cut short")
    rest = _read_exact(f, header_len - _HEADER.size, "header")
    body, crc = first + rest[:-4], struct.unpack("<I", rest[-4:])[0]
    if zlib.crc32(body) != crc:
        raise FormatError("header checksum mismatch (file is corrupted)")
    (_, version, _, flags, sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc, *low) = layout.unpack(
        body[:layout.size])
    low_hz, low_snr = (low[0] * 200, low[1]) if low else (0, 0)
    h = Header(sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc, flags, version, low_hz, low_snr)
    _check(h)
    return h


def _check(h: Header) -> None:
    if h.flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{h.flags:02x}")
    if h.sample_rate != SAMPLE_RATE or h.channels != 1:
        raise FormatError(f"unsupported layout: {h.sample_rate} Hz, {h.channels} channel(s)")
    if not 1 <= h.bits <= 16 or not 1 <= h.n_q <= 64 or not 1 <= h.frame_size <= 16000:
        raise FormatError("header values out of range")
    if not 0 < h.num_samples <= MAX_SAMPLES:
        raise FormatError(f"absurd length of {h.num_samples} samples")
    if not 1 <= h.frames_per_chunk <= MAX_FRAMES_PER_CHUNK:
        raise FormatError(f"absurd chunk size of {h.frames_per_chunk} frames")
    if h.version == VERSION_LOW_BAND and not (200 <= h.low_band_hz <= 8000 and 0 <= h.low_band_snr <= 40):
        raise FormatError(f"low band out of range ({h.low_band_hz} Hz, {h.low_band_snr} dB)")


def encode_chunk(n_frames: int, payload: bytes, range_coded: bool = False, marker: bytes | None = None) -> bytes:
    head = _CHUNK.pack(marker or (CHUNK_RANGE if range_coded else CHUNK_FIXED), n_frames, len(payload))
    return head + struct.pack("<I", zlib.crc32(head + payload)) + payload


def _chunk_head(f, missing: str) -> tuple[bytes, bytes, int, int]:
    """A chunk's header and checksum -> (those bytes, marker, n_frames, payload_len); ``missing`` names it
    when the file ends first."""
    head = f.read(CHUNK_OVERHEAD)
    if len(head) < CHUNK_OVERHEAD:
        raise FormatError(f"truncated file: {missing}")
    return (head, *_CHUNK.unpack_from(head))


def _chunk_payload(f, head: bytes, plen: int, what: str, mismatch: str) -> bytes:
    """The payload after ``head`` (its length already checked against the chunk's bounds), checksum verified."""
    payload = _read_exact(f, plen, what)
    if zlib.crc32(head[:_CHUNK.size] + payload) != struct.unpack_from("<I", head, _CHUNK.size)[0]:
        raise FormatError(mismatch)
    return payload


def _read_low_chunk(f, h: Header, index: int, n_frames: int) -> tuple[int, bytes]:
    """The low-band chunk after codes chunk ``index``: ``n_frames`` MDCT frames (one more after the last)."""
    head, magic, frames, plen = _chunk_head(f, f"low band of chunk {index} missing")
    if magic != CHUNK_LOW:
        raise FormatError(f"chunk {index}: bad low-band chunk marker (file is corrupted)")
    if frames != n_frames:
        raise FormatError(f"chunk {index}: low band has {frames} frames, expected {n_frames}")
    if plen % 4 or plen > h.low_payload_max(frames):
        raise FormatError(f"chunk {index}: bad low-band payload length {plen}")
    return frames, _chunk_payload(f, head, plen, f"low band of chunk {index}",
                                  f"chunk {index}: low-band checksum mismatch (file is corrupted)")


def read_chunks(f, h: Header):
    """Yield (n_frames, payload, range_coded, low) for every chunk, checking sizes, checksums and the frame
    total; ``low``: the low-band chunk as (frames, payload) (version 2; its frames: ``n_frames``, plus one
    in the last chunk), else None."""
    remaining, index = h.num_frames, 0
    while remaining > 0:
        head, magic, n_frames, plen = _chunk_head(f, f"chunk {index} missing ({remaining} frames short)")
        ranged = magic == CHUNK_RANGE
        if magic not in (CHUNK_FIXED, CHUNK_RANGE) or (ranged and not h.entropy_coded):
            raise FormatError(f"chunk {index}: bad chunk marker (file is corrupted)")
        if not 1 <= n_frames <= min(h.frames_per_chunk, remaining):
            raise FormatError(f"chunk {index}: bad frame count {n_frames}")
        fixed = h.fixed_payload(n_frames)
        if (ranged and (plen >= fixed or plen % 4)) or (not ranged and plen != fixed):
            raise FormatError(f"chunk {index}: bad payload length {plen}")
        payload = _chunk_payload(f, head, plen, f"chunk {index}", f"chunk {index}: checksum mismatch (file is corrupted)")
        low = _read_low_chunk(f, h, index, n_frames + (n_frames == remaining)) if h.low_band_hz else None
        yield n_frames, payload, ranged, low
        remaining -= n_frames
        index += 1
    if f.read(1):
        raise FormatError("unexpected bytes after the last chunk")
