"""Fuzz packet parsing and the receiver's tracker with hostile datagrams; print what went wrong.

    python research/fuzz_packets.py [--datagrams 100000] [--seed 1]

An honest stream (one frame per packet, plain, hybrid, and context-coded with the installed context model:
real speech codes, so most packets are context-coded) is interleaved with hostile datagrams: random bytes, bit flips, and *same-session forgeries* (header and payload bytes edited, then the
CRC recomputed with the model tag, which anyone can do). Then the same with a key: sealed datagrams
(docs/packets.md, "Sealed packets"; ``packets.parse(..., opener=)``, as the receiver calls it) edited,
truncated, replayed, moved under other headers, or sealed with another key.

Counted: tracebacks (any exception but PacketError), hangs (one datagram over ``SLOW_S``), honest packets
the tracker refused after forgeries (a walked window; the one packet right after a forged end of stream is
counted apart: without a key that costs one packet per forgery), forgeries accepted (without a key that is
the expected price of no authentication; with a key it must be 0), low bands that the receiver's low-band
decoder would turn into samples beyond full scale, and the time to refuse a hybrid packet of another
session (at the session check) against a full parse. No sockets; uses the installed package (torch only to
encode the speech of the context-coded stream).
"""
from __future__ import annotations

import argparse
import collections
import os
import struct
import time
import zlib

import numpy as np

from audiocodec.audio import load
from audiocodec.stream.frames import frames_of, low_of
from audiocodec.stream.lowband import LowBandDecoder, LowBandEncoder, layer as low_band_layer
from audiocodec.bitstream.context import ContextModel
from audiocodec.model import default_weights_path
from audiocodec.transport import packets
from audiocodec.transport.crypto import Opener, Sealer
from audiocodec.transport.jitter import Stats, Tracker

SESSION = 0x5EC0_0001
TAG = zlib.crc32(b"e7e38de15c46c934")  # as stream.engine.model_tag makes it (that module loads torch)
N_Q = 12
SLOW_S = 0.1
_CONTEXT_PATH = default_weights_path().replace(".safetensors", ".context.npz")
CONTEXT = ContextModel.load(_CONTEXT_PATH) if os.path.isfile(_CONTEXT_PATH) else None
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "samples", "speech_female.wav")


def speech_codes(n: int) -> np.ndarray:
    """(N_Q, n) codes of real speech (the sample, repeated), as the shipped codec makes them."""
    import torch

    from audiocodec.stream.engine import load_engine

    torch.set_num_threads(1)
    clip = load(SAMPLE)
    codes = load_engine().codec.encode(torch.from_numpy(clip.astype(np.float32)), N_Q)[0].numpy()
    return np.tile(codes, (1, 1 + n // codes.shape[1]))[:, :n]


def honest_stream(n: int, hybrid: bool, r: np.random.Generator, key: bytes | None = None,
                  session: int = SESSION, context: ContextModel | None = None) -> list[bytes]:
    """``n`` one-frame datagrams of ``session`` (hybrid: with the 600 Hz low band of real speech; ``key``:
    sealed with it; ``context``: real speech codes, context-coded where that is smaller)."""
    sealer = Sealer(key, session) if key is not None else None
    layer, low = None, None
    if hybrid:
        clip = load(SAMPLE)
        layer = low_band_layer(600, 12.0)
        enc = LowBandEncoder(layer)
        low = np.concatenate([enc.push(np.tile(clip, 1 + n * 320 // len(clip))[:n * 320]), enc.flush()])
    codes = speech_codes(n) if context is not None else r.integers(0, 1024, (N_Q, n))
    return [packets.build_audio(k, k * packets.FRAME, session,
                                frames_of(codes[:, k:k + 1], None if low is None else low[k:k + 1]),
                                tag=TAG, layer=layer, sealer=sealer, index=k, context=context) for k in range(n)]


def recrc(data: bytes) -> bytes:
    """Give a datagram a valid CRC (the public rule: CRC-32 of header and payload, seeded with the tag)."""
    if len(data) < packets.HEADER_SIZE:
        return data
    header, payload = data[:20], data[24:]
    seed = TAG if data[1] not in packets.CONTEXT_KINDS or CONTEXT is None else zlib.crc32(CONTEXT.id, TAG)
    crc = zlib.crc32(payload, zlib.crc32(header, seed)) & 0xFFFFFFFF
    return header + struct.pack(">I", crc) + payload


def hostile(kind: str, base: bytes, r: np.random.Generator) -> bytes:
    """One hostile datagram made from honest ``base``."""
    if kind == "random":
        return r.bytes(int(r.integers(0, 1300)))
    d = bytearray(base)
    if kind == "flip":
        for _ in range(r.integers(1, 4)):
            d[r.integers(len(d))] ^= 1 << r.integers(8)
        return bytes(d)
    if kind == "forged header":  # seq, timestamp, n_q, frames, length or send time; session kept
        field = int(r.choice([2, 3, 4, 5, 6, 7, 13, 14, 15, 16, 17, 18, 19]))
        d[field] = r.integers(256)
        return recrc(bytes(d))
    if kind == "forged far ahead":  # the walk: sequence number and timestamp ~2,990 frames on
        seq, ts = struct.unpack_from(">HI", d, 2)
        struct.pack_into(">HI", d, 2, (seq + 2990) & 0xFFFF, (ts + 2990 * packets.FRAME) & 0xFFFFFFFF)
        return recrc(bytes(d))
    if kind == "forged end":
        seq, ts = struct.unpack_from(">HI", d, 2)
        return packets.build_end(seq + 1, ts + packets.FRAME, SESSION, ts + packets.FRAME, tag=TAG)
    for _ in range(r.integers(1, 6)):  # forged payload
        d[r.integers(24, len(d))] = r.integers(256)
    return recrc(bytes(d))


KINDS = ("random", "flip", "forged header", "forged payload", "forged far ahead", "forged end")


def _low_peak(p: packets.Packet) -> float:
    """Peak of what the receiver's low-band decoder plays for a packet's low band over silent neural audio."""
    if p.layer is None:
        return 0.0
    dec = LowBandDecoder(p.layer)
    rows = low_of(p.frames)
    out = np.concatenate([dec.push(np.zeros(len(rows) * packets.FRAME), rows), dec.flush()])
    return float(np.abs(out).max(initial=0.0))


def plain_run(n: int, r: np.random.Generator, counts: collections.Counter) -> None:
    """Without a key: hostile datagrams between an honest stream's packets."""
    runs = [(False, None), (True, None)] + ([(False, CONTEXT)] if CONTEXT is not None else [])
    for hybrid, context in runs:
        stream = honest_stream(max(1, n // (len(runs) * 4)), hybrid, r, context=context)
        counts["honest context-coded packets"] += sum(d[1] in packets.CONTEXT_KINDS for d in stream)
        tracker = Tracker(Stats())
        for k, data in enumerate(stream):
            now = 1000.0 + 0.02 * k
            _feed(packets.parse(data, TAG, session=tracker.session, context=context), tracker, now, counts,
                  honest=True)
            for j in range(3):
                kind = KINDS[(k * 3 + j) % len(KINDS)]
                bad = hostile(kind, stream[max(0, k - int(r.integers(0, 5)))], r)
                counts["datagrams"] += 1
                t0 = time.perf_counter()
                try:
                    p = packets.parse(bad, TAG, session=tracker.session, context=context)
                except packets.PacketError:
                    counts[f"refused by parse ({kind})"] += 1
                    continue
                except Exception as exc:  # noqa: BLE001 - counting them is the point
                    counts[f"traceback: {type(exc).__name__}: {str(exc)[:60]}"] += 1
                    continue
                finally:
                    if time.perf_counter() - t0 > SLOW_S:
                        counts["hangs"] += 1
                if bad != stream[k] and kind != "random":
                    counts[f"forgery parsed, no key ({kind})"] += 1
                if _low_peak(p) > 1.0:
                    counts["full-scale low band"] += 1
                _feed(p, tracker, now + 0.001, counts, honest=False)
            counts["datagrams"] += 1


def _feed(p, tracker: Tracker, now: float, counts: collections.Counter, honest: bool) -> None:
    before, ended = tracker.stats.dropped["implausible"], tracker.end_seq is not None
    frame = tracker.accept(p, now)
    if honest and frame is None and tracker.stats.dropped["implausible"] > before:
        # the packet right after a forged end is refused, the next revokes that end: one lost per forgery
        counts["honest packet lost to a forged end" if ended else "honest packets refused after forgeries"] += 1


def foreign_parse_time(r: np.random.Generator, reps: int = 300) -> dict[str, float]:
    """Mean ms per hybrid packet of another session: fully parsed (CRC, codes, low band: what a receiver
    did before it passed its session to ``parse``), and refused at the session check (now)."""
    stream = honest_stream(reps, True, r)
    times = {}
    for name, session in (("full parse", None), ("refused as foreign", SESSION + 1)):
        t0 = time.perf_counter()
        for data in stream:
            try:
                packets.parse(data, TAG, session=session)
            except packets.PacketError:
                pass
        times[name] = (time.perf_counter() - t0) / reps * 1000
    return times


def sealed_run(n: int, r: np.random.Generator, counts: collections.Counter) -> None:
    """With a key: every edited, replayed, moved or foreign-keyed datagram must be refused."""
    key, other = bytes(r.integers(0, 256, 32, dtype=np.uint8)), bytes(32)
    m = max(1, n // 8)
    wire = honest_stream(m, False, r, key) + honest_stream(m, True, r, key, SESSION + 1)
    stranger = honest_stream(m, False, r, other) + honest_stream(m, True, r, other, SESSION + 1)
    opener = Opener(key)
    for k, data in enumerate(wire):
        if k == m:  # the hybrid half is another session: a new receiver
            opener = Opener(key)
        packets.parse(data, TAG, opener)
        for j in range(3):
            kind = ("flip", "truncate", "replay", "moved", "other key", "random")[(k * 3 + j) % 6]
            old = wire[max(0, k - int(r.integers(0, 50)))]
            d = bytearray(old)
            if kind == "flip":
                d[r.integers(len(d))] ^= 1 << r.integers(8)
            elif kind == "truncate":
                d = d[:r.integers(len(d))]
            elif kind == "moved":  # a valid sealed payload under the header of a later packet
                d = bytearray(wire[min(len(wire) - 1, k + 1)][:20] + bytes(d[20:]))
            elif kind == "other key":
                d = bytearray(stranger[min(len(stranger) - 1, k + 1)])
            elif kind == "random":
                d = bytearray([packets.VERSION_SEALED]) + bytearray(r.bytes(int(r.integers(0, 200))))
            counts["sealed datagrams"] += 1
            t0 = time.perf_counter()
            try:
                packets.parse(bytes(d), TAG, opener)
                counts[f"forgery accepted WITH key ({kind})"] += 1
            except packets.PacketError as exc:
                counts[f"sealed refused: {exc.reason}"] += 1
            except Exception as exc:  # noqa: BLE001
                counts[f"traceback: {type(exc).__name__}: {str(exc)[:60]}"] += 1
            if time.perf_counter() - t0 > SLOW_S:
                counts["hangs"] += 1
        counts["sealed datagrams"] += 1


def run(datagrams: int, seed: int = 1) -> dict:
    """About ``datagrams`` plain and as many sealed datagrams -> counts, and 'failures' (tracebacks, hangs,
    honest packets refused, forgeries accepted with a key)."""
    r = np.random.default_rng(seed)
    counts: collections.Counter = collections.Counter()
    plain_run(datagrams, r, counts)
    sealed_run(datagrams, r, counts)
    failures = sum(v for k, v in counts.items() if k.startswith(("traceback", "forgery accepted WITH"))
                   or k in ("hangs", "honest packets refused after forgeries", "full-scale low band"))
    return {"counts": dict(counts), "failures": failures, "foreign_hybrid_parse_ms": foreign_parse_time(r)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    res = run(args.datagrams, args.seed)
    for k, v in sorted(res["counts"].items()):
        print(f"{v:8d}  {k}")
    cost = res["foreign_hybrid_parse_ms"]
    print("hybrid packet of another session: " + ", ".join(f"{v:.3f} ms {k}" for k, v in cost.items()))
    print(f"{time.time() - t0:.0f} s: {res['failures']} failures (tracebacks, hangs, honest packets refused, "
          f"forgeries accepted with a key)")


if __name__ == "__main__":
    main()
