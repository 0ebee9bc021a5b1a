"""Fuzz the .acdc reader and decoder with mutated real files; print what went wrong, by mutation.

    python research/fuzz_files.py [--files 10000] [--seed 1]

Sources: one clip compressed at 3 kbps (range-coded), 6 kbps fixed-rate and 6 kbps hybrid, as version-3
files, plus the version-1 and -2 files of the same (old files still read). Mutations, in turn: bit flips,
truncation, overwritten runs, inserted garbage (all caught by checksums); header fields, chunk fields and
chunk payloads edited and *re-checksummed* (so they reach the range decoder, the low-band decoder and the
model); chunks swapped, repeated, dropped, or spliced in from another file (version 3 must refuse these).
Every file is read (``read_info``); every re-checksummed one that reads is also decoded.

Counted as failures: a traceback (any exception but a CodecError), a hang (over ``HANG_SECONDS``), a moved
chunk that reads, a decoded output that is not finite, not of the header's length, or louder than
``LOUD`` before clipping. Outputs over full scale (the neural decoder's own, from edited codes; a low band
is held within it) are counted by source. Uses the installed package (``pip install -e .``).
"""
from __future__ import annotations

import argparse
import collections
import io
import os
import signal
import struct
import time
import zlib

import numpy as np

from audiocodec.audio import load
from audiocodec.bitstream import container
from audiocodec import compress as compress_module
from audiocodec.compress import compress, decompress
from audiocodec.errors import CodecError
from audiocodec.info import read_info
from audiocodec.stream.engine import load_engine

HANG_SECONDS = 10
CHUNK_FRAMES = 8         # frames per chunk of the source files
LOUD = 4.0               # decoded samples beyond this (before clipping) count as a blow-up
REORDERINGS = ("swap", "repeat", "drop", "splice")
KINDS = ("flip", "truncate", "overwrite", "insert", "header", "chunk head", "payload") + REORDERINGS
RESEALED = ("header", "chunk head", "payload")


def sources(engine, clip: np.ndarray) -> dict[str, bytes]:
    """Name -> file bytes: version-3 files of three modes, and one each of versions 1 and 2. Chunks of
    ``CHUNK_FRAMES`` frames (compress writes 500), so a clip of a second has several to move about."""
    default, compress_module.FRAMES_PER_CHUNK = compress_module.FRAMES_PER_CHUNK, CHUNK_FRAMES
    try:
        old = {"v3 3 kbps": compress(clip, 3.0, engine), "v3 6 kbps fixed": compress(clip, 6.0, engine, entropy=False),
               "v3 hybrid 6": compress(clip, 6.0, engine, hybrid=True)}
    finally:
        compress_module.FRAMES_PER_CHUNK = default
    files = {name: to_v3(data) for name, data in old.items()}
    files["v1 3 kbps"], files["v2 hybrid 6"] = to_v1_v2(old["v3 3 kbps"]), to_v1_v2(old["v3 hybrid 6"])
    return files


def _parse(data: bytes) -> tuple[container.Header, list]:
    f = io.BytesIO(data)
    h = container.read_header(f)
    return h, list(container.read_chunks(f, h))


def _tuples(chunks) -> list:
    """read_chunks' rows -> (n_frames, payload, range_coded, marker) records in file order."""
    out = []
    for n, payload, marker, low in chunks:
        out.append((n, payload, False, marker))
        if low is not None:
            out.append((low[0], low[1], False, container.CHUNK_LOW))
    return out


def to_v3(data: bytes) -> bytes:
    """Any readable file -> the same content in the chained format compress writes (version 4)."""
    h, chunks = _parse(data)
    return container.encode_file(h, _tuples(chunks))


def to_v1_v2(data: bytes) -> bytes:
    """Any readable file -> version 1 (version 2 with a low band), as older audiocodec wrote them."""
    h, chunks = _parse(data)
    h = container.replace(h, version=container.VERSION_LOW_BAND if h.low_band_hz else container.VERSION)
    return container.encode_header(h) + b"".join(container.encode_chunk(*t) for t in _tuples(chunks))


def split(data: bytes) -> tuple[bytes, list[bytes]]:
    """A version-3 file -> its header and its records (chunks, then the end record), as bytes."""
    size = struct.unpack_from("<H", data, 5)[0]
    at, records = size, []
    while at < len(data):
        end = at + 12 + struct.unpack_from("<I", data, at + 4)[0]
        records.append(data[at:end])
        at = end
    return data[:size], records


def reseal(header: bytes, records: list[bytes]) -> bytes:
    """Recompute every checksum of a version-3 file (header CRC, the chunk chain, the end record), as a
    careful forger would: what remains for the reader is the meaning of the fields."""
    header = header[:-4] + struct.pack("<I", zlib.crc32(header[:-4]))
    out, link = [header], 0
    for i, r in enumerate(records):
        head, payload = r[:8], r[12:]
        if head[:2] == container.CHUNK_END and len(payload) == 8:
            payload = struct.pack("<II", i, struct.unpack_from("<I", header, len(header) - 4)[0])
        link = zlib.crc32(head + payload, zlib.crc32(struct.pack("<I", i), link))
        out.append(head + struct.pack("<I", link) + payload)
    return b"".join(out)


def mutate(kind: str, data: bytes, other: bytes, r: np.random.Generator) -> bytes:
    """One mutation of ``data`` (``other``: another source, for splices)."""
    d = bytearray(data)
    if kind == "flip":
        for _ in range(r.integers(1, 4)):
            d[r.integers(len(d))] ^= 1 << r.integers(8)
        return bytes(d)
    if kind == "truncate":
        return bytes(d[:r.integers(len(d))])
    if kind == "overwrite":
        s = r.integers(len(d))
        d[s:s + 8] = r.integers(0, 256, 8, dtype=np.uint8).tobytes()
        return bytes(d[:len(data)])
    if kind == "insert":
        s = r.integers(len(d))
        d[s:s] = r.integers(0, 256, r.integers(1, 20), dtype=np.uint8).tobytes()
        return bytes(d)
    header, records = split(data)
    if kind == "header":
        h = bytearray(header)
        h[r.integers(7, len(h) - 4)] = r.integers(256)
        return reseal(bytes(h), records)
    i = int(r.integers(len(records) - 1))  # a chunk (not the end record)
    rec = bytearray(records[i])
    if kind == "chunk head":
        rec[r.integers(2, 8)] = r.integers(256)
        records[i] = bytes(rec)
        return reseal(header, records)
    if kind == "payload":
        if len(rec) > 12:
            for _ in range(r.integers(1, 4)):
                rec[r.integers(12, len(rec))] = r.integers(256)
        records[i] = bytes(rec)
        return reseal(header, records)
    n = len(records) - 1
    j = int(r.integers(n))
    if kind == "swap":
        j = (i + 1 + j % max(1, n - 1)) % n if n > 1 else i
        records[i], records[j] = records[j], records[i]
    elif kind == "repeat":
        records.insert(j, records[i])
    elif kind == "drop":
        del records[i]
    else:  # splice: a record of another file at the same place
        _, theirs = split(other)
        records[i] = theirs[min(i, len(theirs) - 2)]
    return header + b"".join(records)


def _alarm(signum, frame):
    raise TimeoutError


def trial(kind: str, data: bytes, original: bytes, engine) -> str:
    """Read (and for re-checksummed files decode) one mutated file -> an outcome name."""
    signal.alarm(HANG_SECONDS)
    try:
        read_info(io.BytesIO(data))
        if kind in REORDERINGS and data != original:
            return "moved chunk accepted"
        if kind not in RESEALED:
            return "read"
        h = container.read_header(io.BytesIO(data))
        out = decompress(data, engine)
        if len(out) != h.num_samples or not np.all(np.isfinite(out)):
            return "bad output"
        peak = float(np.abs(out).max())
        return f"loud (peak {peak:.0f})" if peak > LOUD else f"decoded, peak {peak:.1f}" if peak > 1 else "decoded"
    except CodecError:
        return "refused"
    except TimeoutError:
        return "hang"
    except Exception as exc:  # noqa: BLE001 - counting them is the point
        return f"traceback: {type(exc).__name__}: {str(exc)[:80]}"
    finally:
        signal.alarm(0)


FAILURES = ("moved chunk accepted", "bad output", "hang")


def run(files: int, seed: int = 1, engine=None, clip: np.ndarray | None = None) -> dict:
    """Fuzz ``files`` mutated files -> {kind: Counter of outcomes} plus 'failures': their total."""
    engine = engine or load_engine()
    if clip is None:
        clip = load(os.path.join(os.path.dirname(__file__), "..", "samples", "speech_female.wav"))[:16000]
    src = sources(engine, clip)
    names = list(src)
    r = np.random.default_rng(seed)
    old = signal.signal(signal.SIGALRM, _alarm)
    counts: dict = collections.defaultdict(collections.Counter)
    try:
        for i in range(files):
            kind = KINDS[i % len(KINDS)]
            name = names[(i // len(KINDS)) % len(names)]
            if kind in RESEALED + REORDERINGS and not name.startswith("v3"):
                name = "v3 3 kbps" if i % 2 else "v3 hybrid 6"
            other = src["v3 6 kbps fixed" if name != "v3 6 kbps fixed" else "v3 3 kbps"]
            outcome = trial(kind, mutate(kind, src[name], other, r), src[name], engine)
            label = ("loud" if outcome.startswith("loud") else
                     "over full scale" if outcome.startswith("decoded, peak") else None)
            counts[kind][f"{label} {name}" if label else outcome] += 1
            if outcome.startswith(("loud", "decoded, peak")):
                counts["peaks over full scale"][f"{name}: {outcome}"] += 1
    finally:
        signal.signal(signal.SIGALRM, old)
    failures = sum(n for kind, c in counts.items() if kind != "peaks over full scale" for k, n in c.items()
                   if k in FAILURES or k.startswith(("traceback", "loud")))
    return {"counts": {k: dict(v) for k, v in counts.items()}, "failures": failures, "files": files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    result = run(args.files, args.seed)
    for kind, c in result["counts"].items():
        print(f"{kind:12s} " + ", ".join(f"{k} {n}" for k, n in sorted(c.items())))
    print(f"{result['files']} files in {time.time() - t0:.0f} s: {result['failures']} failures "
          f"(tracebacks, hangs, moved chunks accepted, bad or loud output)")


if __name__ == "__main__":
    main()
