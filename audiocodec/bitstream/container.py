"""The .acdc file format: a checksummed header, then self-contained checksummed chunks of codes (and, in
hybrid files, each followed by a chunk of the low band's waveform layer, ``stream/lowband.py``).

Version 3 chains the chunks' CRCs: each starts from its index and the CRC before it, and an end record
binds the chain to the header, so swapped, duplicated, dropped, spliced or truncated chunks are refused.
Version 4 (every file written now, by ``Writer``) is version 3 plus the id of the context model that coded
its context-coded chunks (``bitstream/context.py``). Versions 1 and 2 (``encode_chunk``, unchained) and 3
are still read.

Byte layout (all integers little-endian) is documented in docs/bitstream.md. Nothing here allocates
by a length read from the file before checking it against hard limits, so hostile files fail fast
with a FormatError (a CodecError: one line, no traceback)."""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field, replace

from ..constants import SAMPLE_RATE
from ..errors import CodecError
from .packing import packed_size

MAGIC = b"ACDC"
VERSION = 1                      # the format version of a file without the low-band layer
VERSION_LOW_BAND = 2             # ... and with it (version 1 readers cannot skip that layer)
VERSION_CHAINED = 3              # chained chunk CRCs and an end record, the input's rate and channels
VERSION_CONTEXT = 4              # ... and the id of the context model (2026-12-04)
READABLE_VERSIONS = (1, 2, 3, 4)  # versions this code reads
FLAG_ENTROPY = 0x01              # some chunks are range-coded with the per-stage tables (versions 1-3)
FLAG_CONTEXT = 0x02              # some chunks are coded with the context model the header names (version 4)
KNOWN_FLAGS = FLAG_ENTROPY | FLAG_CONTEXT

# magic, version, header_len, flags, sample_rate, channels, n_q, bits, frame_size, num_samples,
# model_id, frames_per_chunk, reserved (0); then crc32 of everything before it
_HEADER = struct.Struct("<4sBHBIBBBHQ8sHx")
HEADER_SIZE = _HEADER.size + 4   # 40 bytes
# version 2: byte 35 is the low band's cutoff in 200 Hz units, then its SNR in dB and 3 reserved bytes
_HEADER_V2 = struct.Struct("<4sBHBIBBBHQ8sHBB3x")
HEADER_SIZE_V2 = _HEADER_V2.size + 4  # 44 bytes
# version 3: bytes 35-36 as in version 2 (0 when no low band), a reserved byte (0), then the input's sample
# rate (u32) and channel count (u16)
_HEADER_V3 = struct.Struct("<4sBHBIBBBHQ8sHBBxIH")
HEADER_SIZE_V3 = _HEADER_V3.size + 4  # 48 bytes
# version 4: version 3's fields, then the context model's id (8 bytes; zeros when no chunk is context-coded)
# and the output gain (i16, 1/256 dB: what the decoder multiplies its output by; 0 for most files)
_HEADER_V4 = struct.Struct("<4sBHBIBBBHQ8sHBBxIH8sh")
HEADER_SIZE_V4 = _HEADER_V4.size + 4  # 58 bytes
MAX_GAIN = 12 * 256              # version 4: the output gain is within +-12 dB
_LAYOUTS = {VERSION: _HEADER, VERSION_LOW_BAND: _HEADER_V2, VERSION_CHAINED: _HEADER_V3, VERSION_CONTEXT: _HEADER_V4}
_CHUNK = struct.Struct("<2sHI")  # marker, n_frames, payload_len; then crc32, then payload
CHUNK_OVERHEAD = _CHUNK.size + 4  # 12 bytes of framing per chunk, before its payload
CHUNK_FIXED = b"CF"              # payload: fixed-rate packed codes
CHUNK_RANGE = b"CR"              # payload: range-coded codes (only in files with FLAG_ENTROPY)
CHUNK_CONTEXT = b"CC"            # payload: context-coded codes (only in files with FLAG_CONTEXT)
CHUNK_LOW = b"LB"                # payload: the range-coded low band of the codes chunk before it (version 2)
CHUNK_END = b"EN"                # version 3: the end record; payload: _END
_END = struct.Struct("<II")      # records before the end record, header CRC-32
END_SIZE = _CHUNK.size + 4 + _END.size  # 20 bytes: the end record of a version-3 file

MAX_SAMPLES = SAMPLE_RATE * 3600 * 24  # one day of audio
MAX_FRAMES_PER_CHUNK = 3000      # one minute of 20 ms frames
MAX_HEADER = 4096
MAX_INPUT_RATE = 1_000_000       # version 3: the input's sample rate and channels, as recorded
MAX_INPUT_CHANNELS = 1024


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
    input_rate: int = 16000      # version 3: the input file's sample rate (16000 when unknown) ...
    input_channels: int = 1      # ... and its channel count (1 when unknown)
    context_id: bytes = bytes(8)  # version 4: the context model that coded the context-coded chunks ...
    output_gain: int = 0         # ... and the gain the decoder applies, in 1/256 dB (band-limited inputs)
    crc: int = field(default=0, compare=False)  # as read: the header's CRC-32 (version 3 chains start from it)

    def __post_init__(self):
        if self.low_band_hz and self.version == VERSION:  # a low band needs version 2
            object.__setattr__(self, "version", VERSION_LOW_BAND)

    @property
    def entropy_coded(self) -> bool:
        return bool(self.flags & FLAG_ENTROPY)

    @property
    def context_coded(self) -> bool:
        return bool(self.flags & FLAG_CONTEXT)

    @property
    def chained(self) -> bool:
        """Whether the chunks' CRCs are chained and an end record follows them (version 3 and later)."""
        return self.version >= VERSION_CHAINED

    @property
    def num_frames(self) -> int:
        return -(-self.num_samples // self.frame_size)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    @property
    def size(self) -> int:
        """Bytes of this header in a file."""
        return _LAYOUTS[self.version].size + 4

    def fixed_payload(self, n_frames: int) -> int:
        return packed_size(n_frames * self.n_q, self.bits)

    def low_payload_max(self, n_frames: int) -> int:
        """Bound on a low-band chunk's payload: 4 bytes per coefficient and frame, far above what any
        signal costs (about 3 bits per coefficient at 20 dB)."""
        return 64 + 4 * n_frames * (self.low_band_hz // 25)


def encode_header(h: Header) -> bytes:
    """The header's bytes in its ``version``'s layout (the reader's range checks are not applied: see Writer)."""
    fields = (h.flags, h.sample_rate, h.channels, h.n_q, h.bits, h.frame_size, h.num_samples, h.model_id,
              h.frames_per_chunk)
    layout = _LAYOUTS[h.version]
    extra = {VERSION: (), VERSION_LOW_BAND: (h.low_band_hz // 200, h.low_band_snr),
             VERSION_CHAINED: (h.low_band_hz // 200, h.low_band_snr, h.input_rate, h.input_channels),
             VERSION_CONTEXT: (h.low_band_hz // 200, h.low_band_snr, h.input_rate, h.input_channels,
                               h.context_id, h.output_gain)}[h.version]
    body = layout.pack(MAGIC, h.version, layout.size + 4, *fields, *extra)
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
    layout = _LAYOUTS[version]
    if not layout.size + 4 <= header_len <= MAX_HEADER:
        raise FormatError(f"bad header length {header_len}")
    if len(first) < _HEADER.size:
        raise FormatError("truncated file: header cut short")
    rest = _read_exact(f, header_len - _HEADER.size, "header")
    body, crc = first + rest[:-4], struct.unpack("<I", rest[-4:])[0]
    if zlib.crc32(body) != crc:
        raise FormatError("header checksum mismatch (file is corrupted)")
    (_, version, _, flags, sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc, *extra) = layout.unpack(
        body[:layout.size])
    low_hz, low_snr = (extra[0] * 200, extra[1]) if extra else (0, 0)
    rate, channels = extra[2:4] if version >= VERSION_CHAINED else (16000, 1)
    context_id, gain = extra[4:6] if version >= VERSION_CONTEXT else (bytes(8), 0)
    h = Header(sr, ch, n_q, bits, frame_size, num_samples, model_id, fpc, flags, version, low_hz, low_snr,
               rate, channels, context_id, gain, crc)
    _check(h)
    return h


def _check(h: Header) -> None:
    if h.flags & ~KNOWN_FLAGS:
        raise FormatError(f"unknown flags 0x{h.flags:02x}")
    if h.context_coded and (h.version < VERSION_CONTEXT or h.context_id == bytes(8)):
        raise FormatError("context-coded chunks, but no context model named")
    if not -MAX_GAIN <= h.output_gain <= MAX_GAIN:
        raise FormatError(f"output gain {h.output_gain / 256:.1f} dB out of range")
    if h.sample_rate != SAMPLE_RATE or h.channels != 1:
        raise FormatError(f"unsupported layout: {h.sample_rate} Hz, {h.channels} channel(s)")
    if not 1 <= h.bits <= 16 or not 1 <= h.n_q <= 64 or not 1 <= h.frame_size <= 16000:
        raise FormatError("header values out of range")
    if not 0 < h.num_samples <= MAX_SAMPLES:
        raise FormatError(f"absurd length of {h.num_samples} samples")
    if not 1 <= h.frames_per_chunk <= MAX_FRAMES_PER_CHUNK:
        raise FormatError(f"absurd chunk size of {h.frames_per_chunk} frames")
    if (h.low_band_hz or h.low_band_snr or h.version == VERSION_LOW_BAND) and not (
            200 <= h.low_band_hz <= 8000 and 0 <= h.low_band_snr <= 40):
        raise FormatError(f"low band out of range ({h.low_band_hz} Hz, {h.low_band_snr} dB)")
    if not (1 <= h.input_rate <= MAX_INPUT_RATE and 1 <= h.input_channels <= MAX_INPUT_CHANNELS):
        raise FormatError(f"input layout out of range ({h.input_rate} Hz, {h.input_channels} channels)")


def encode_chunk(n_frames: int, payload: bytes, range_coded: bool = False, marker: bytes | None = None) -> bytes:
    """A version 1/2 chunk (its CRC covers only itself). Version 3 chunks come from ``Writer.chunk``."""
    head = _CHUNK.pack(marker or (CHUNK_RANGE if range_coded else CHUNK_FIXED), n_frames, len(payload))
    return head + struct.pack("<I", zlib.crc32(head + payload)) + payload


class _Chain:
    """Version 3's CRC chain: record ``i``'s CRC-32 starts from CRC-32(``i``, the CRC of record ``i - 1``)."""

    def __init__(self):
        self.records, self.link = 0, 0

    def seed(self) -> int:
        return zlib.crc32(struct.pack("<I", self.records), self.link)

    def advance(self, crc: int) -> None:
        self.records, self.link = self.records + 1, crc


class Writer:
    """Writes a version-3 file. ``chunk`` seals each chunk as it is made (in file order); ``finish``, once the
    sample count and flags are known, returns the header and the end record: the file is
    header + chunks + end record. ``encode_file`` does it all and reads the result back."""

    def __init__(self):
        self.chain, self.frames = _Chain(), 0

    def chunk(self, n_frames: int, payload: bytes, range_coded: bool = False, marker: bytes | None = None) -> bytes:
        marker = marker or (CHUNK_RANGE if range_coded else CHUNK_FIXED)
        head = _CHUNK.pack(marker, n_frames, len(payload))
        crc = zlib.crc32(head + payload, self.chain.seed())
        self.chain.advance(crc)
        self.frames += n_frames if marker != CHUNK_LOW else 0
        return head + struct.pack("<I", crc) + payload

    def finish(self, h: Header) -> tuple[bytes, bytes]:
        """-> (header, end record) of version 4, or CodecError if readers would refuse the header."""
        h = replace(h, version=VERSION_CONTEXT)
        if h.num_samples > MAX_SAMPLES:
            raise CodecError(f"{h.num_samples / 16000 / 3600:.1f} h of audio: an .acdc file holds at most "
                             f"{MAX_SAMPLES // 16000 // 3600} h; split the input")
        try:
            _check(h)
        except FormatError as exc:
            raise CodecError(f"cannot write a file readers refuse: {exc}") from None
        if self.frames != h.num_frames:
            raise CodecError(f"cannot write a file readers refuse: {self.frames} frames for {h.num_frames}")
        header = encode_header(h)
        body = _END.pack(self.chain.records, struct.unpack_from("<I", header, len(header) - 4)[0])
        head = _CHUNK.pack(CHUNK_END, 0, len(body))
        return header, head + struct.pack("<I", zlib.crc32(head + body, self.chain.seed())) + body


def encode_file(h: Header, chunks) -> bytes:
    """A whole version-4 file: ``h`` (its version is set to 4) and ``chunks``, (n_frames, payload, range_coded,
    marker) tuples in file order. Read back before it is returned: CodecError if a reader would refuse it."""
    w = Writer()
    body = [w.chunk(*c) for c in chunks]
    header, end = w.finish(h)
    data = b"".join([header, *body, end])
    f = io.BytesIO(data)
    try:
        for _ in read_chunks(f, read_header(f)):
            pass
    except FormatError as exc:
        raise CodecError(f"cannot write a file readers refuse: {exc}") from None
    return data


def _chunk_head(f, missing: str) -> tuple[bytes, bytes, int, int]:
    """A chunk's header and checksum -> (those bytes, marker, n_frames, payload_len); ``missing`` names it
    when the file ends first."""
    head = f.read(CHUNK_OVERHEAD)
    if len(head) < CHUNK_OVERHEAD:
        raise FormatError(f"truncated file: {missing}")
    return (head, *_CHUNK.unpack_from(head))


def _chunk_payload(f, head: bytes, plen: int, what: str, mismatch: str, chain: _Chain | None) -> bytes:
    """The payload after ``head`` (its length already checked against the chunk's bounds), checksum verified
    (in version 3 against the ``chain``, which it then advances)."""
    payload = _read_exact(f, plen, what)
    crc = zlib.crc32(head[:_CHUNK.size] + payload, chain.seed() if chain else 0)
    if crc != struct.unpack_from("<I", head, _CHUNK.size)[0]:
        raise FormatError(mismatch + (" (file is corrupted, or its chunks moved)" if chain else " (file is corrupted)"))
    if chain:
        chain.advance(crc)
    return payload


def _read_low_chunk(f, h: Header, index: int, n_frames: int, chain: _Chain | None) -> tuple[int, bytes]:
    """The low-band chunk after codes chunk ``index``: ``n_frames`` MDCT frames (one more after the last)."""
    head, magic, frames, plen = _chunk_head(f, f"low band of chunk {index} missing")
    if magic != CHUNK_LOW:
        raise FormatError(f"chunk {index}: bad low-band chunk marker (file is corrupted)")
    if frames != n_frames:
        raise FormatError(f"chunk {index}: low band has {frames} frames, expected {n_frames}")
    if plen % 4 or plen > h.low_payload_max(frames):
        raise FormatError(f"chunk {index}: bad low-band payload length {plen}")
    return frames, _chunk_payload(f, head, plen, f"low band of chunk {index}", f"chunk {index}: low-band checksum mismatch",
                                  chain)


def _read_end(f, h: Header, chain: _Chain) -> None:
    """Version 3's end record: the number of records before it and the header's CRC, chained like a chunk."""
    head, magic, frames, plen = _chunk_head(f, "end record missing")
    if magic != CHUNK_END:
        raise FormatError("a chunk after the last frame (file is corrupted, or a chunk repeated)")
    if frames or plen != _END.size:
        raise FormatError("bad end record (file is corrupted)")
    records = chain.records
    body = _chunk_payload(f, head, plen, "end record", "end record: checksum mismatch", chain)
    if _END.unpack(body) != (records, h.crc):
        raise FormatError("end record does not match the header and chunks (file is corrupted, or spliced)")


def read_chunks(f, h: Header):
    """Yield (n_frames, payload, marker, low) for every chunk, checking sizes, checksums and the frame
    total; ``marker``: how the codes are coded (CHUNK_FIXED, CHUNK_RANGE or CHUNK_CONTEXT); ``low``: the
    low-band chunk as (frames, payload) (hybrid files; its frames: ``n_frames``, plus one in the last chunk),
    else None. Version 3 and later: also the CRC chain and the end record (after the last chunk)."""
    chain = _Chain() if h.chained else None
    allowed = {CHUNK_FIXED} | ({CHUNK_RANGE} if h.entropy_coded else set()) | (
        {CHUNK_CONTEXT} if h.context_coded else set())
    remaining, index = h.num_frames, 0
    while remaining > 0:
        head, magic, n_frames, plen = _chunk_head(f, f"chunk {index} missing ({remaining} frames short)")
        ranged = magic != CHUNK_FIXED
        if magic not in allowed:
            raise FormatError(f"chunk {index}: bad chunk marker (file is corrupted)")
        if not 1 <= n_frames <= min(h.frames_per_chunk, remaining):
            raise FormatError(f"chunk {index}: bad frame count {n_frames}")
        fixed = h.fixed_payload(n_frames)
        if (ranged and (plen >= fixed or plen % 4)) or (not ranged and plen != fixed):
            raise FormatError(f"chunk {index}: bad payload length {plen}")
        payload = _chunk_payload(f, head, plen, f"chunk {index}", f"chunk {index}: checksum mismatch", chain)
        low = _read_low_chunk(f, h, index, n_frames + (n_frames == remaining), chain) if h.low_band_hz else None
        yield n_frames, payload, magic, low
        remaining -= n_frames
        index += 1
    if chain:
        _read_end(f, h, chain)
    if f.read(1):
        raise FormatError("unexpected bytes after the last chunk")
