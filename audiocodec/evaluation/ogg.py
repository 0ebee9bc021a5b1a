"""A tiny Ogg page reader (RFC 3533): split an Ogg stream into its packets' sizes.

Used to count the bits Opus really spends on audio: the sum of its packet sizes without the Ogg
container (27-byte page headers and lacing tables) and without the two header packets (OpusHead,
OpusTags, RFC 7845), which a real-time link would not send per call.
"""
from __future__ import annotations

import struct

PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, serial, seq, crc, n_segments


def packet_sizes(data: bytes) -> list[int]:
    """Sizes in bytes of every packet of a single-stream Ogg file, in order (headers included)."""
    sizes: list[int] = []
    pos, current = 0, 0
    while pos < len(data):
        if len(data) - pos < PAGE_HEADER.size:
            raise ValueError(f"truncated Ogg page header at byte {pos}")
        capture, version, _, _, _, _, _, n_seg = PAGE_HEADER.unpack_from(data, pos)
        if capture != b"OggS" or version != 0:
            raise ValueError(f"no Ogg page at byte {pos}")
        lacing = data[pos + PAGE_HEADER.size: pos + PAGE_HEADER.size + n_seg]
        if len(lacing) < n_seg:
            raise ValueError(f"truncated Ogg lacing table at byte {pos}")
        body = sum(lacing)
        pos += PAGE_HEADER.size + n_seg + body
        if pos > len(data):
            raise ValueError("truncated Ogg page body")
        for lace in lacing:  # a packet ends at the first lacing value below 255
            current += lace
            if lace < 255:
                sizes.append(current)
                current = 0
    return sizes


def opus_payload_bytes(data: bytes) -> int:
    """Bytes of Opus audio packets in an Ogg Opus file: all packets but OpusHead and OpusTags."""
    sizes = packet_sizes(data)
    if len(sizes) < 2:
        raise ValueError("not an Ogg Opus stream (fewer than two header packets)")
    return sum(sizes[2:])
