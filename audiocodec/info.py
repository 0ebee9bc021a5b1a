"""``read_info``: what an .acdc file holds, read and checked without the model (no torch: ``audiocodec info``
imports only this, the container and the mode table).

It reads every byte: the header (its checksum and ranges), every chunk's checksum and, from version 3, their
order (the CRC chain) and the end record, and that the chunks hold the header's frame count. It does not
decode: whether the model ids name the installed weights and context model, and whether entropy-coded codes
and low-band payloads decode, only ``decompress`` finds out. ``checked`` and ``not_checked`` in the result say so."""
from __future__ import annotations

from typing import BinaryIO

from .bitstream.container import (CHUNK_CONTEXT, CHUNK_OVERHEAD, CHUNK_RANGE, END_SIZE, VERSION_CHAINED, read_chunks,
                                  read_header)
from .stream import modes

NOT_CHECKED = ["model ids match the installed weights and context model",
               "entropy-coded and low-band payloads decode"]


def _checked(version: int) -> list[str]:
    chained = version >= VERSION_CHAINED
    return ["header checksum and ranges",
            "every chunk's checksum" + (" and order (CRC chain)" if chained else " (chunk order is not recorded "
                                                                              f"before version {VERSION_CHAINED})"),
            *(["end record (no chunk dropped, added or spliced from another file)"] if chained else []),
            "frame count", "nothing after the last chunk" + (" record" if chained else "")]


def read_info(f: BinaryIO) -> dict:
    """Header fields, sizes and what was verified of the .acdc stream in ``f`` (FormatError if it is not a
    valid one). ``size_bytes``: the whole file (header, chunks with their framing, end record)."""
    header = read_header(f)
    chunks = [(len(p), r, len(low[1]) if low else None) for _, p, r, low in read_chunks(f, header)]
    low_bytes = [n for _, _, n in chunks if n is not None]
    fixed_kbps = header.n_q * header.bits * header.sample_rate / header.frame_size / 1000
    mode = modes.find(header.n_q, header.low_band_hz, header.low_band_snr)  # (1.5 kbps: 4 rows coded, 3 fixed-rate)
    payload = sum(n + CHUNK_OVERHEAD for n, _, _ in chunks) + sum(n + CHUNK_OVERHEAD for n in low_bytes)
    size = header.size + payload + (END_SIZE if header.chained else 0)
    info = {
        "format_version": header.version,
        "model": header.model_id.hex(),
        "codebooks": header.n_q,
        "bitrate_kbps": mode.kbps if mode else fixed_kbps,
        "entropy_coded": header.entropy_coded or header.context_coded,
        "entropy_model": ("context " + header.context_id.hex() if header.context_coded else
                          "per-stage tables" if header.entropy_coded else "none (fixed-rate)"),
        "chunks": len(chunks),
        "context_coded_chunks": sum(m == CHUNK_CONTEXT for _, m, _ in chunks),
        "range_coded_chunks": sum(m == CHUNK_RANGE for _, m, _ in chunks),
    }
    if header.low_band_hz:  # a hybrid stream: its bitrate is the hybrid mode's (the neural layer's is kept apart)
        info.update(neural_kbps=fixed_kbps, hybrid=True,
                    low_band_hz=header.low_band_hz, low_band_snr_db=header.low_band_snr,
                    low_band_kbps=8 * sum(low_bytes) / header.duration / 1000)
    return info | {
        "sample_rate": header.sample_rate,
        "channels": header.channels,
        "input_rate": header.input_rate,
        "input_channels": header.input_channels,
        "output_gain_db": header.output_gain / 256,
        "samples": header.num_samples,
        "duration_s": header.duration,
        "size_bytes": size,
        "actual_kbps": 8 * size / header.duration / 1000,
        "checked": _checked(header.version),
        "not_checked": list(NOT_CHECKED),
    }
