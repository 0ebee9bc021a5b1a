"""The datagram format: a 24-byte RTP-like header, then 1..10 frames (``stream.frames.Frame``): their codes,
and in a hybrid stream (``send --hybrid``) also their low band (``stream/lowband.py``); docs/packets.md.

The codes go fixed-rate (10 bits each) or, where the sender has a context model (``bitstream/context.py``)
and that is smaller, context-coded (AUDIO_CTX, AUDIO_LOW_CTX): range-coded with the context starting afresh
at the packet's first frame, so every packet decodes alone and a lost one costs only its own frames. The
CRC (and a sealed packet's associated data) of a context-coded packet also covers the context model's id:
a receiver with another context model, or none, refuses it instead of decoding garbage.

All integers big-endian (network order). ``parse`` treats its input as hostile: it never raises anything
but ``PacketError``, never allocates by a length the bytes claim, and checks the CRC-32 before trusting
any field. The CRC starts from a tag of the model's weights (``stream.engine.model_tag``), so codes made by
other weights, which would decode into plausible-sounding garbage, fail the check like damaged bytes do, at
no cost in bytes (as AUTOSAR E2E folds a data id into its CRC). No torch.

Sealed packets (version 3, ``send --key``): the same header in clear, the payload encrypted and a 16-byte
ChaCha20-Poly1305 tag in place of the CRC (``crypto.py``); the header and the model tag (and the context
model's id) are its associated data. ``parse`` refuses by the cheap checks first (size, version, session, a
context-coded packet without a context model), then checks the CRC or opens the seal, and only then reads
the payload (codes, low band).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..bitstream.container import FormatError
from ..bitstream.packing import pack_codes, packed_size, unpack_codes
from ..constants import CODE_BITS, FRAME
from ..errors import CodecError
from ..stream.frames import Frame, codes_of, frames_of, low_of
from ..stream.lowband import LowBand, layer as low_band_layer
from . import coded as context_coded
from .crypto import TAG_SIZE, Opener, SealError, Sealer

VERSION = 2                        # plain packets: the CRC-32 starts from the model tag (1: from zero)
VERSION_SEALED = 3                 # sealed packets: ChaCha20-Poly1305 (``--key``) instead of the CRC
AUDIO, END, AUDIO_LOW = 0, 1, 2    # packet types (AUDIO_LOW: codes, then the frames' low band)
AUDIO_CTX, AUDIO_LOW_CTX = 3, 4    # the same with context-coded codes
AUDIO_KINDS = (AUDIO, AUDIO_LOW, AUDIO_CTX, AUDIO_LOW_CTX)
CONTEXT_KINDS = (AUDIO_CTX, AUDIO_LOW_CTX)
LOW_KINDS = (AUDIO_LOW, AUDIO_LOW_CTX)
LOW_HEAD = struct.Struct(">BBH")   # low-band payloads first: cutoff / 200 Hz, SNR in dB, context-coded bytes (or 0)
HEADER = struct.Struct(">BBHIIBBHI")  # version, type, seq, timestamp, session, n_q, frames, payload length, send ms
HEADER_SIZE = HEADER.size + 4      # + CRC-32
SEALED_OVERHEAD = HEADER.size + TAG_SIZE  # a sealed packet: header, then the encrypted payload and its tag
BITS = CODE_BITS                   # bits per code (1024-entry codebooks)
MAX_CODEBOOKS = 32
MAX_FRAMES = 10                    # 200 ms of audio in one packet at most
MAX_DATAGRAM = 1200                # anything longer is not ours (stays under a 1280-byte IPv6 MTU)
END_PAYLOAD = struct.Struct(">Q")  # end of stream: total number of samples sent
UDP_IP_OVERHEAD = 28               # IPv4 (20) + UDP (8) header bytes per datagram, for wire-rate figures

assert HEADER_SIZE == 24


class PacketError(ValueError):
    """Why a datagram was refused. ``reason`` is one of REASONS (the receiver counts them)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


REASONS = ("oversized", "short", "version", "foreign", "context", "corrupt", "forged", "replayed", "malformed")


@dataclass(frozen=True)
class Packet:
    kind: int                 # one of AUDIO_KINDS, or END
    seq: int                  # 16-bit sequence number, +1 per datagram (wraps)
    timestamp: int            # 32-bit: sample index of the first frame (wraps); END: of the frame after the last
    session: int              # 32-bit random session id chosen by the sender
    n_q: int                  # codebooks per frame (0 for END)
    send_ms: int              # sender's wall clock in ms, modulo 2**32 (for delay statistics)
    frames: tuple[Frame, ...] = ()  # AUDIO: the frames (AUDIO_LOW: each with its dequantized low band)
    total_samples: int = 0    # END only: exact length of the stream in samples
    size: int = 0             # bytes on the wire (without IP/UDP headers)
    layer: LowBand | None = None  # AUDIO_LOW(_CTX) only: the low-band layer the frames were sent with
    payload: int = 0          # the payload's bytes (without header, CRC or seal): codes and low band


def _crc(header: bytes, payload: bytes, tag: int, context_id: bytes = b"") -> int:
    """CRC-32 of header and payload from the model tag (a context-coded packet's: from the tag and the
    context model's id)."""
    return zlib.crc32(payload, zlib.crc32(header, zlib.crc32(context_id, tag & 0xFFFFFFFF))) & 0xFFFFFFFF


def _aad(header: bytes, tag: int, context_id: bytes = b"") -> bytes:
    """A sealed packet's associated data: its header, the model tag and (context-coded) the context model's id
    (neither sent)."""
    return header + struct.pack(">I", tag & 0xFFFFFFFF) + context_id


def _header(kind: int, seq: int, timestamp: int, session: int, n_q: int, frames: int, length: int, send_ms: int,
            sealed: bool) -> bytes:
    return HEADER.pack(VERSION_SEALED if sealed else VERSION, kind, seq & 0xFFFF, timestamp & 0xFFFFFFFF,
                       session & 0xFFFFFFFF, n_q, frames, length, send_ms & 0xFFFFFFFF)


def _finish(header: bytes, payload: bytes, tag: int, sealer: Sealer | None, index: int | None,
            context_id: bytes = b"") -> bytes:
    """Header + CRC + payload, or (``sealer``) header + sealed payload, its nonce the extended ``index``."""
    if sealer is None:
        return header + struct.pack(">I", _crc(header, payload, tag, context_id)) + payload
    seq = struct.unpack_from(">H", header, 2)[0]
    if index is None or index < 0 or index & 0xFFFF != seq:
        raise ValueError(f"a sealed packet needs its extended index (low 16 bits {seq}), got {index}")
    return header + sealer.seal(_aad(header, tag, context_id), payload, index)


def _context_coded(codes: np.ndarray, context, limit: int) -> bytes | None:
    """codes (n_q, frames) context-coded, if ``context`` codes streams of n_q rows and that takes fewer than
    ``limit`` bytes (fixed-rate's); else None."""
    if context is None:
        return None
    try:
        context.rows(codes.shape[0])
    except CodecError:
        return None
    coded = context_coded.encode(context, codes)
    return coded if len(coded) < limit else None


def build_audio(seq: int, timestamp: int, session: int, frames: Sequence[Frame], send_ms: int = 0, tag: int = 0,
                layer: LowBand | None = None, sealer: Sealer | None = None, index: int | None = None,
                context=None) -> bytes:
    """1..MAX_FRAMES frames (codes in [0, 1024)) -> one datagram; ``tag``: the sender's model tag; ``layer``:
    a hybrid stream's low band, sent with each frame's MDCT coefficients (AUDIO_LOW); ``sealer``: seal it
    (version 3) with ``index``, the extended sequence number (never reused in a session); ``context``: a
    ``ContextModel`` of the sender's model: the codes go context-coded (AUDIO_CTX, AUDIO_LOW_CTX) when that
    is smaller than fixed-rate."""
    if not 1 <= len(frames) <= MAX_FRAMES:
        raise ValueError(f"need 1..{MAX_FRAMES} frames, got {len(frames)}")
    codes = codes_of(frames)
    n_q = codes.shape[0]
    if not 1 <= n_q <= MAX_CODEBOOKS:
        raise ValueError(f"need 1..{MAX_CODEBOOKS} codebooks, got {n_q}")
    payload = pack_codes(codes.T, BITS)  # fixed-rate, frame-major: frame 0's n_q codes, then frame 1's, ...
    coded = _context_coded(codes, context, len(payload))
    payload = payload if coded is None else coded
    if layer is not None:
        head = LOW_HEAD.pack(layer.cutoff_hz // 200, int(layer.snr_db), 0 if coded is None else len(coded))
        payload = head + payload + layer.encode_frames(low_of(frames))
    kind = (AUDIO if layer is None else AUDIO_LOW) if coded is None else (AUDIO_CTX if layer is None else AUDIO_LOW_CTX)
    header = _header(kind, seq, timestamp, session, n_q, len(frames), len(payload), send_ms, sealer is not None)
    return _finish(header, payload, tag, sealer, index, b"" if coded is None else context.id)


def build_end(seq: int, timestamp: int, session: int, total_samples: int, send_ms: int = 0, tag: int = 0,
              sealer: Sealer | None = None, index: int | None = None) -> bytes:
    """The end-of-stream datagram: carries the exact sample count so the receiver can trim its output."""
    payload = END_PAYLOAD.pack(total_samples)
    header = _header(END, seq, timestamp, session, 0, 0, len(payload), send_ms, sealer is not None)
    return _finish(header, payload, tag, sealer, index)


def parse(data: bytes, tag: int = 0, opener: Opener | None = None, session: int | None = None,
          context=None) -> Packet:
    """One datagram -> Packet, or PacketError(reason) for anything that is not a valid packet of the model
    whose ``model_tag`` is ``tag``. ``opener``: only sealed packets (version 3) are read, opened with it (a
    failing seal: 'forged' or 'replayed'); without it only plain ones (version 2). ``session``: packets of
    another session are refused as 'foreign' before any checksum, decryption or payload is looked at.
    ``context``: the ``ContextModel`` that context-coded packets are decoded with (None: they are refused as
    'context'; made with another one, their CRC fails ('corrupt') or their seal does not open ('forged'))."""
    fields, payload = _open(data, tag, opener, session, context)
    kind, seq, ts, sender, n_q, frames, send_ms = fields
    n = len(data)
    if kind in AUDIO_KINDS:
        codes, layer, low = _audio(kind, payload, n_q, frames, context)
        return Packet(kind, seq, ts, sender, n_q, send_ms, tuple(frames_of(codes, low)), size=n, layer=layer,
                      payload=len(payload))
    if kind == END:
        if n_q or frames or len(payload) != END_PAYLOAD.size:
            raise PacketError("malformed", "end-of-stream packet with codes or a wrong payload")
        (total,) = END_PAYLOAD.unpack(payload)
        return Packet(END, seq, ts, sender, 0, send_ms, total_samples=total, size=n, payload=len(payload))
    raise PacketError("malformed", f"unknown packet type {kind}")


def _open(data: bytes, tag: int, opener: Opener | None, session: int | None, context) -> tuple[tuple, bytes]:
    """The cheap checks (size, version, session), then the CRC or the seal: ((kind, seq, timestamp, session,
    n_q, frames, send_ms), payload) of a datagram whose bytes are as sent, or PacketError."""
    n = len(data)
    if n > MAX_DATAGRAM:
        raise PacketError("oversized", f"{n} bytes > {MAX_DATAGRAM}")
    least = SEALED_OVERHEAD if opener is not None else HEADER_SIZE
    if n < least:
        raise PacketError("short", f"{n} bytes < {least}-byte header{' and tag' if opener is not None else ''}")
    data = bytes(data)
    version = VERSION_SEALED if opener is not None else VERSION
    if data[0] != version:
        raise PacketError("version", _version_detail(data[0], opener is not None))
    _, kind, seq, ts, sender, n_q, frames, length, send_ms = HEADER.unpack_from(data)
    if session is not None and sender != session:
        raise PacketError("foreign", f"session {sender:08x}, not {session:08x}")
    if kind in CONTEXT_KINDS and context is None:
        raise PacketError("context", "a context-coded packet, and this receiver has no context model (install "
                                     "the sender's beside the weights, or send with --fixed-rate)")
    context_id = context.id if kind in CONTEXT_KINDS else b""
    if opener is None:
        (crc,) = struct.unpack_from(">I", data, HEADER.size)
        if _crc(data[:HEADER.size], data[HEADER_SIZE:], tag, context_id) != crc:
            raise PacketError("corrupt", "CRC-32 mismatch (damaged, or sent with other model weights"
                                         + (" or another context model)" if context_id else ")"))
        payload = data[HEADER_SIZE:]
    else:
        try:
            payload, _ = opener.open(_aad(data[:HEADER.size], tag, context_id), data[HEADER.size:], sender, seq,
                                     hint=ts // (FRAME * max(1, frames)))
        except SealError as exc:
            raise PacketError(exc.reason, str(exc).partition(": ")[2]) from None
    if length != len(payload):
        raise PacketError("malformed", f"payload length field {length} != {len(payload)} bytes present")
    return (kind, seq, ts, sender, n_q, frames, send_ms), payload


def _audio(kind: int, payload: bytes, n_q: int, frames: int, context) -> tuple:
    """An audio payload -> (codes (n_q, frames), its LowBand or None, low band (frames, coefs) or None).
    Sizes are checked before anything is decoded: fixed-rate codes take exactly ``packed_size`` bytes, and
    context-coded ones fewer (else the sender sends them fixed-rate), at least one."""
    if not (1 <= n_q <= MAX_CODEBOOKS and 1 <= frames <= MAX_FRAMES):
        raise PacketError("malformed", f"{n_q} codebooks x {frames} frames out of range")
    fixed, length = packed_size(n_q * frames, BITS), len(payload)
    start, coded = 0, length if kind == AUDIO_CTX else fixed
    if kind in LOW_KINDS:
        if length < LOW_HEAD.size:
            raise PacketError("malformed", f"payload {length} bytes has no low-band head")
        cutoff, snr, count = LOW_HEAD.unpack_from(payload)
        if not (1 <= cutoff <= 40 and snr <= 40 and (count == 0) == (kind == AUDIO_LOW)):
            raise PacketError("malformed", f"low band of {cutoff * 200} Hz at {snr} dB ({count} coded bytes) out of range")
        start, coded = LOW_HEAD.size, count if kind == AUDIO_LOW_CTX else fixed
    end = start + coded
    if kind in CONTEXT_KINDS and not 0 < coded < fixed:
        raise PacketError("malformed", f"{coded} context-coded bytes for {n_q} x {frames} codes (fixed-rate: {fixed})")
    if kind in (AUDIO, AUDIO_CTX) and length != end:
        raise PacketError("malformed", f"payload {length} bytes, {n_q} x {frames} codes need {end}")
    if kind in LOW_KINDS and (length < end or (length - end) % 4):
        raise PacketError("malformed", f"payload {length} bytes does not hold {n_q} x {frames} codes and a low band")
    codes = _codes(kind, payload[start:end], n_q, frames, context)
    if kind not in LOW_KINDS:
        return codes, None, None
    layer = low_band_layer(cutoff * 200, float(snr))
    try:
        low = layer.decode_frames(payload[end:], frames)
    except FormatError as exc:
        raise PacketError("malformed", str(exc)) from None
    return codes, layer, low


def _codes(kind: int, data: bytes, n_q: int, frames: int, context) -> np.ndarray:
    """The codes (n_q, frames) of a payload's code bytes (sizes already checked)."""
    if kind not in CONTEXT_KINDS:
        return unpack_codes(data, n_q * frames, BITS).reshape(frames, n_q).T
    try:
        context.rows(n_q)
        return context_coded.decode(context, data, n_q, frames)
    except CodecError as exc:  # FormatError: the bytes do not decode; else rows the model does not code
        raise PacketError("malformed", str(exc)) from None


def peek(data: bytes, tag: int = 0, context=None) -> tuple[int, int, int]:
    """(type, timestamp, frames) of a datagram for a relay that has no key: a plain packet's once its CRC
    checks out (``context``: the context model, for context-coded packets; else PacketError), a sealed
    packet's from its header as sent (only a key holder can check it). Nothing is decoded."""
    if len(data) >= SEALED_OVERHEAD and data[0] == VERSION_SEALED:
        _, kind, _, ts, _, _, frames, _, _ = HEADER.unpack_from(data)
        return kind, ts, frames
    (kind, _, ts, _, _, frames, _), _ = _open(data, tag, None, None, context)
    return kind, ts, frames


def _version_detail(version: int, keyed: bool) -> str:
    if keyed and version == VERSION:
        return "a plain packet (version 2), but this receiver has a key: the sender needs --key too"
    if not keyed and version == VERSION_SEALED:
        return "a sealed packet (version 3): this receiver needs the sender's key (--key FILE)"
    return f"version {version}, this receiver reads {VERSION_SEALED if keyed else VERSION}"


def unwrap(value: int, reference: int | None, bits: int) -> int:
    """Extend a wrapping ``bits``-bit counter to the integer closest to ``reference`` (RFC 3550 style)."""
    if reference is None:
        return value
    span, half = 1 << bits, 1 << (bits - 1)
    return reference + ((value - reference + half) % span) - half
