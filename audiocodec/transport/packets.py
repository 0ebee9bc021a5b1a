"""The datagram format: a 24-byte RTP-like header, then the codes of 1..10 frames (docs/packets.md); in a
hybrid stream (``send --hybrid``) also those frames' low band (``lowband.py``).

All integers big-endian (network order). ``parse`` treats its input as hostile: it never raises anything
but ``PacketError``, never allocates by a length the bytes claim, and checks the CRC-32 before trusting
any field. The CRC starts from a tag of the model's weights (``model_tag``), so codes made by other
weights, which would decode into plausible-sounding garbage, fail the check like damaged bytes do, at no
cost in bytes (as AUTOSAR E2E folds a data id into its CRC). No torch; numpy only for the code packing.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..bitstream.container import FormatError
from ..bitstream.packing import pack_codes, packed_size, unpack_codes
from ..lowband import LowBand, layer as low_band_layer

VERSION = 2                        # 2: the CRC-32 starts from the model tag (1: from zero)
AUDIO, END, AUDIO_LOW = 0, 1, 2    # packet types (AUDIO_LOW: codes, then the frames' low band)
LOW_HEAD = struct.Struct(">BBH")   # AUDIO_LOW payload first: low-band cutoff / 200 Hz, SNR in dB, reserved (0)
HEADER = struct.Struct(">BBHIIBBHI")  # version, type, seq, timestamp, session, n_q, frames, payload length, send ms
HEADER_SIZE = HEADER.size + 4      # + CRC-32
SAMPLE_RATE = 16000
FRAME = 320                        # samples per codec frame (20 ms)
BITS = 10                          # bits per code (1024-entry codebooks)
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


REASONS = ("oversized", "short", "version", "corrupt", "malformed")


@dataclass(frozen=True)
class Packet:
    kind: int                 # AUDIO or END
    seq: int                  # 16-bit sequence number, +1 per datagram (wraps)
    timestamp: int            # 32-bit: sample index of the first frame (wraps); END: of the frame after the last
    session: int              # 32-bit random session id chosen by the sender
    n_q: int                  # codebooks per frame (0 for END)
    frames: int               # frames in this packet (0 for END)
    send_ms: int              # sender's wall clock in ms, modulo 2**32 (for delay statistics)
    codes: np.ndarray | None  # (n_q, frames) int64 for AUDIO
    total_samples: int = 0    # END only: exact length of the stream in samples
    size: int = 0             # bytes on the wire (without IP/UDP headers)
    layer: LowBand | None = None  # AUDIO_LOW only: the low-band layer ...
    low: np.ndarray | None = None  # ... and its dequantized MDCT frames (frames, coefficients)


def model_tag(model_id: str) -> int:
    """The 32-bit tag of a model (its ``Codec.model_id``, a hash of the weights file) that seeds the CRC."""
    return zlib.crc32(model_id.encode())


def _crc(header: bytes, payload: bytes, tag: int) -> int:
    return zlib.crc32(payload, zlib.crc32(header, tag & 0xFFFFFFFF)) & 0xFFFFFFFF


def _seal(header: bytes, payload: bytes, tag: int) -> bytes:
    return header + struct.pack(">I", _crc(header, payload, tag)) + payload


def build_audio(seq: int, timestamp: int, session: int, codes: np.ndarray, send_ms: int = 0, tag: int = 0,
                low: tuple[LowBand, np.ndarray] | None = None) -> bytes:
    """codes (n_q, frames) ints in [0, 1024) -> one datagram; ``tag``: the sender's ``model_tag``; ``low``:
    a hybrid stream's layer and these frames' MDCT coefficients (frames, coefficients) -> AUDIO_LOW."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError("codes must be (n_q, frames)")
    n_q, frames = codes.shape
    if not (1 <= n_q <= MAX_CODEBOOKS and 1 <= frames <= MAX_FRAMES):
        raise ValueError(f"need 1..{MAX_CODEBOOKS} codebooks and 1..{MAX_FRAMES} frames, got {n_q} x {frames}")
    payload = pack_codes(codes.T, BITS)  # frame-major: frame 0's n_q codes, then frame 1's, ...
    kind = AUDIO
    if low is not None:
        layer, frames_low = low
        if len(frames_low) != frames:
            raise ValueError(f"{len(frames_low)} low-band frames for {frames} frames of codes")
        payload = LOW_HEAD.pack(layer.cutoff_hz // 200, int(layer.snr_db), 0) + payload + layer.encode_frames(frames_low)
        kind = AUDIO_LOW
    header = HEADER.pack(VERSION, kind, seq & 0xFFFF, timestamp & 0xFFFFFFFF, session & 0xFFFFFFFF,
                         n_q, frames, len(payload), send_ms & 0xFFFFFFFF)
    return _seal(header, payload, tag)


def build_end(seq: int, timestamp: int, session: int, total_samples: int, send_ms: int = 0, tag: int = 0) -> bytes:
    """The end-of-stream datagram: carries the exact sample count so the receiver can trim its output."""
    payload = END_PAYLOAD.pack(total_samples)
    header = HEADER.pack(VERSION, END, seq & 0xFFFF, timestamp & 0xFFFFFFFF, session & 0xFFFFFFFF,
                         0, 0, len(payload), send_ms & 0xFFFFFFFF)
    return _seal(header, payload, tag)


def parse(data: bytes, tag: int = 0) -> Packet:
    """One datagram -> Packet, or PacketError(reason) for anything that is not a valid packet of the model
    whose ``model_tag`` is ``tag``."""
    n = len(data)
    if n > MAX_DATAGRAM:
        raise PacketError("oversized", f"{n} bytes > {MAX_DATAGRAM}")
    if n < HEADER_SIZE:
        raise PacketError("short", f"{n} bytes < {HEADER_SIZE}-byte header")
    data = bytes(data)
    if data[0] != VERSION:
        raise PacketError("version", f"version {data[0]}, this receiver reads {VERSION}")
    (crc,) = struct.unpack_from(">I", data, HEADER.size)
    if _crc(data[:HEADER.size], data[HEADER_SIZE:], tag) != crc:
        raise PacketError("corrupt", "CRC-32 mismatch (damaged, or sent with other model weights)")
    _, kind, seq, ts, session, n_q, frames, length, send_ms = HEADER.unpack_from(data)
    payload = data[HEADER_SIZE:]
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
            return Packet(AUDIO, seq, ts, session, n_q, frames, send_ms, codes, size=n)
        cutoff, snr, reserved = LOW_HEAD.unpack_from(payload)
        if not (1 <= cutoff <= 40 and snr <= 40 and reserved == 0):
            raise PacketError("malformed", f"low band of {cutoff * 200} Hz at {snr} dB out of range")
        layer = low_band_layer(cutoff * 200, float(snr))
        try:
            low = layer.decode_frames(payload[end:], frames)
        except FormatError as exc:
            raise PacketError("malformed", str(exc)) from None
        return Packet(AUDIO_LOW, seq, ts, session, n_q, frames, send_ms, codes, size=n, layer=layer, low=low)
    if kind == END:
        if n_q or frames or length != END_PAYLOAD.size:
            raise PacketError("malformed", "end-of-stream packet with codes or a wrong payload")
        (total,) = END_PAYLOAD.unpack(payload)
        return Packet(END, seq, ts, session, 0, 0, send_ms, None, total_samples=total, size=n)
    raise PacketError("malformed", f"unknown packet type {kind}")


def unwrap(value: int, reference: int | None, bits: int) -> int:
    """Extend a wrapping ``bits``-bit counter to the integer closest to ``reference`` (RFC 3550 style)."""
    if reference is None:
        return value
    span, half = 1 << bits, 1 << (bits - 1)
    return reference + ((value - reference + half) % span) - half
