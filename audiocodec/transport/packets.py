"""The datagram format: a 24-byte RTP-like header, then 1..10 frames (``stream.frames.Frame``): their codes,
and in a hybrid stream (``send --hybrid``) also their low band (``stream/lowband.py``); docs/packets.md.

All integers big-endian (network order). ``parse`` treats its input as hostile: it never raises anything
but ``PacketError``, never allocates by a length the bytes claim, and checks the CRC-32 before trusting
any field. The CRC starts from a tag of the model's weights (``stream.engine.model_tag``), so codes made by
other weights, which would decode into plausible-sounding garbage, fail the check like damaged bytes do, at
no cost in bytes (as AUTOSAR E2E folds a data id into its CRC). No torch; numpy only for the code packing.

Sealed packets (version 3, ``send --key``): the same header in clear, the payload encrypted and a 16-byte
ChaCha20-Poly1305 tag in place of the CRC (``crypto.py``); the header and the model tag are its associated
data. ``parse`` refuses by the cheap checks first (size, version, session), then checks the CRC or opens the
seal, and only then reads the payload (codes, low band).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Sequence

from ..bitstream.container import FormatError
from ..bitstream.packing import pack_codes, packed_size, unpack_codes
from ..constants import CODE_BITS, FRAME
from ..stream.frames import Frame, codes_of, frames_of, low_of
from ..stream.lowband import LowBand, layer as low_band_layer
from .crypto import TAG_SIZE, Opener, SealError, Sealer

VERSION = 2                        # plain packets: the CRC-32 starts from the model tag (1: from zero)
VERSION_SEALED = 3                 # sealed packets: ChaCha20-Poly1305 (``--key``) instead of the CRC
AUDIO, END, AUDIO_LOW = 0, 1, 2    # packet types (AUDIO_LOW: codes, then the frames' low band)
LOW_HEAD = struct.Struct(">BBH")   # AUDIO_LOW payload first: low-band cutoff / 200 Hz, SNR in dB, reserved (0)
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


REASONS = ("oversized", "short", "version", "foreign", "corrupt", "forged", "replayed", "malformed")


@dataclass(frozen=True)
class Packet:
    kind: int                 # AUDIO or END
    seq: int                  # 16-bit sequence number, +1 per datagram (wraps)
    timestamp: int            # 32-bit: sample index of the first frame (wraps); END: of the frame after the last
    session: int              # 32-bit random session id chosen by the sender
    n_q: int                  # codebooks per frame (0 for END)
    send_ms: int              # sender's wall clock in ms, modulo 2**32 (for delay statistics)
    frames: tuple[Frame, ...] = ()  # AUDIO: the frames (AUDIO_LOW: each with its dequantized low band)
    total_samples: int = 0    # END only: exact length of the stream in samples
    size: int = 0             # bytes on the wire (without IP/UDP headers)
    layer: LowBand | None = None  # AUDIO_LOW only: the low-band layer the frames were sent with


def _crc(header: bytes, payload: bytes, tag: int) -> int:
    return zlib.crc32(payload, zlib.crc32(header, tag & 0xFFFFFFFF)) & 0xFFFFFFFF


def _aad(header: bytes, tag: int) -> bytes:
    """A sealed packet's associated data: its header and the model tag (not sent)."""
    return header + struct.pack(">I", tag & 0xFFFFFFFF)


def _header(kind: int, seq: int, timestamp: int, session: int, n_q: int, frames: int, length: int, send_ms: int,
            sealed: bool) -> bytes:
    return HEADER.pack(VERSION_SEALED if sealed else VERSION, kind, seq & 0xFFFF, timestamp & 0xFFFFFFFF,
                       session & 0xFFFFFFFF, n_q, frames, length, send_ms & 0xFFFFFFFF)


def _finish(header: bytes, payload: bytes, tag: int, sealer: Sealer | None, index: int | None) -> bytes:
    """Header + CRC + payload, or (``sealer``) header + sealed payload, its nonce the extended ``index``."""
    if sealer is None:
        return header + struct.pack(">I", _crc(header, payload, tag)) + payload
    seq = struct.unpack_from(">H", header, 2)[0]
    if index is None or index < 0 or index & 0xFFFF != seq:
        raise ValueError(f"a sealed packet needs its extended index (low 16 bits {seq}), got {index}")
    return header + sealer.seal(_aad(header, tag), payload, index)


def build_audio(seq: int, timestamp: int, session: int, frames: Sequence[Frame], send_ms: int = 0, tag: int = 0,
                layer: LowBand | None = None, sealer: Sealer | None = None, index: int | None = None) -> bytes:
    """1..MAX_FRAMES frames (codes in [0, 1024)) -> one datagram; ``tag``: the sender's model tag; ``layer``:
    a hybrid stream's low band, sent with each frame's MDCT coefficients (AUDIO_LOW); ``sealer``: seal it
    (version 3) with ``index``, the extended sequence number (never reused in a session)."""
    if not 1 <= len(frames) <= MAX_FRAMES:
        raise ValueError(f"need 1..{MAX_FRAMES} frames, got {len(frames)}")
    codes = codes_of(frames)
    n_q = codes.shape[0]
    if not 1 <= n_q <= MAX_CODEBOOKS:
        raise ValueError(f"need 1..{MAX_CODEBOOKS} codebooks, got {n_q}")
    payload = pack_codes(codes.T, BITS)  # frame-major: frame 0's n_q codes, then frame 1's, ...
    kind = AUDIO
    if layer is not None:
        payload = LOW_HEAD.pack(layer.cutoff_hz // 200, int(layer.snr_db), 0) + payload + layer.encode_frames(low_of(frames))
        kind = AUDIO_LOW
    header = _header(kind, seq, timestamp, session, n_q, len(frames), len(payload), send_ms, sealer is not None)
    return _finish(header, payload, tag, sealer, index)


def build_end(seq: int, timestamp: int, session: int, total_samples: int, send_ms: int = 0, tag: int = 0,
              sealer: Sealer | None = None, index: int | None = None) -> bytes:
    """The end-of-stream datagram: carries the exact sample count so the receiver can trim its output."""
    payload = END_PAYLOAD.pack(total_samples)
    header = _header(END, seq, timestamp, session, 0, 0, len(payload), send_ms, sealer is not None)
    return _finish(header, payload, tag, sealer, index)


def parse(data: bytes, tag: int = 0, opener: Opener | None = None, session: int | None = None) -> Packet:
    """One datagram -> Packet, or PacketError(reason) for anything that is not a valid packet of the model
    whose ``model_tag`` is ``tag``. ``opener``: only sealed packets (version 3) are read, opened with it (a
    failing seal: 'forged' or 'replayed'); without it only plain ones (version 2). ``session``: packets of
    another session are refused as 'foreign' before any checksum, decryption or payload is looked at."""
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
    if opener is None:
        (crc,) = struct.unpack_from(">I", data, HEADER.size)
        if _crc(data[:HEADER.size], data[HEADER_SIZE:], tag) != crc:
            raise PacketError("corrupt", "CRC-32 mismatch (damaged, or sent with other model weights)")
        payload = data[HEADER_SIZE:]
    else:
        try:
            payload, _ = opener.open(_aad(data[:HEADER.size], tag), data[HEADER.size:], sender, seq,
                                     hint=ts // (FRAME * max(1, frames)))
        except SealError as exc:
            raise PacketError(exc.reason, str(exc).partition(": ")[2]) from None
    if length != len(payload):
        raise PacketError("malformed", f"payload length field {length} != {len(payload)} bytes present")
    if kind in (AUDIO, AUDIO_LOW):
        if not (1 <= n_q <= MAX_CODEBOOKS and 1 <= frames <= MAX_FRAMES):
            raise PacketError("malformed", f"{n_q} codebooks x {frames} frames out of range")
        start = LOW_HEAD.size if kind == AUDIO_LOW else 0
        end = start + packed_size(n_q * frames, BITS)   # the codes: payload[start:end]
        if kind == AUDIO and length != end:
            raise PacketError("malformed", f"payload {length} bytes, {n_q} x {frames} codes need {end}")
        if kind == AUDIO_LOW and (length < end or (length - end) % 4):
            raise PacketError("malformed", f"payload {length} bytes does not hold {n_q} x {frames} codes and a low band")
        codes = unpack_codes(payload[start:end], n_q * frames, BITS).reshape(frames, n_q).T
        if kind == AUDIO:
            return Packet(AUDIO, seq, ts, sender, n_q, send_ms, tuple(frames_of(codes)), size=n)
        cutoff, snr, reserved = LOW_HEAD.unpack_from(payload)
        if not (1 <= cutoff <= 40 and snr <= 40 and reserved == 0):
            raise PacketError("malformed", f"low band of {cutoff * 200} Hz at {snr} dB out of range")
        layer = low_band_layer(cutoff * 200, float(snr))
        try:
            low = layer.decode_frames(payload[end:], frames)
        except FormatError as exc:
            raise PacketError("malformed", str(exc)) from None
        return Packet(AUDIO_LOW, seq, ts, sender, n_q, send_ms, tuple(frames_of(codes, low)), size=n, layer=layer)
    if kind == END:
        if n_q or frames or length != END_PAYLOAD.size:
            raise PacketError("malformed", "end-of-stream packet with codes or a wrong payload")
        (total,) = END_PAYLOAD.unpack(payload)
        return Packet(END, seq, ts, sender, 0, send_ms, total_samples=total, size=n)
    raise PacketError("malformed", f"unknown packet type {kind}")


def peek(data: bytes, tag: int = 0) -> tuple[int, int, int]:
    """(type, timestamp, frames) of a datagram for a relay that has no key: a plain packet's once its CRC
    checks out (else PacketError), a sealed packet's from its header as sent (only a key holder can check it)."""
    if len(data) >= SEALED_OVERHEAD and data[0] == VERSION_SEALED:
        _, kind, _, ts, _, _, frames, _, _ = HEADER.unpack_from(data)
        return kind, ts, frames
    p = parse(data, tag)
    return p.kind, p.timestamp, len(p.frames)


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
