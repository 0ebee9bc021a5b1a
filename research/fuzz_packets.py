"""Fuzz packet parsing and the receiver's tracker with hostile datagrams; print what went wrong.

    python research/fuzz_packets.py [--datagrams 100000] [--seed 1]

An honest stream (one frame per packet, plain and hybrid, arriving every 20 ms) is interleaved with hostile
datagrams: random bytes, bit flips, and *same-session forgeries* (header and payload bytes edited, then the
CRC recomputed with the model tag, which anyone can do). Then the same with a key: sealed datagrams
(docs/packets.md, "Sealed packets") edited, truncated, replayed, moved under other headers, or sealed with
another key.

Counted: tracebacks (any exception but PacketError/SealError), hangs (one datagram over ``SLOW_S``), honest
packets the tracker refused after forgeries (a walked window; the one packet right after a forged end of
stream is counted apart: without a key that costs one packet per forgery), forgeries accepted (without a key that is
the expected price of no authentication; with a key it must be 0), low bands that decode to a full-scale
signal, and the time to parse a hybrid packet of another session. No torch, no sockets; uses the installed
package. Sealed packets go through ``packets.parse(..., opener=)`` once packets.py has it, else through
the same steps done here (``open_sealed``).
"""
from __future__ import annotations

import argparse
import collections
import inspect
import os
import struct
import time
import zlib

import numpy as np

from audiocodec.audio import load
from audiocodec.lowband import LowBandEncoder, layer as low_band_layer
from audiocodec.transport import packets
from audiocodec.transport.crypto import Opener, Sealer, SealError
from audiocodec.transport.jitter import Stats, Tracker

SESSION = 0x5EC0_0001
TAG = packets.model_tag("1b53dc931200f56b")
N_Q = 12
SLOW_S = 0.1
SEALED_VERSION = 3
INTEGRATED = "opener" in inspect.signature(packets.parse).parameters


def honest_stream(n: int, hybrid: bool, r: np.random.Generator) -> list[bytes]:
    """``n`` one-frame datagrams of session SESSION (hybrid: with the 600 Hz low band of real speech)."""
    low = None
    if hybrid:
        clip = load(os.path.join(os.path.dirname(__file__), "..", "samples", "speech_female.wav"))
        layer = low_band_layer(600, 12.0)
        enc = LowBandEncoder(layer)
        frames = np.concatenate([enc.push(np.tile(clip, 1 + n * 320 // len(clip))[:n * 320]), enc.flush()])
        low = (layer, frames)
    return [packets.build_audio(k, k * packets.FRAME, SESSION, r.integers(0, 1024, (N_Q, 1)), tag=TAG,
                                low=None if low is None else (low[0], low[1][k:k + 1])) for k in range(n)]


def recrc(data: bytes) -> bytes:
    """Give a datagram a valid CRC (the public rule: CRC-32 of header and payload, seeded with the tag)."""
    if len(data) < packets.HEADER_SIZE:
        return data
    header, payload = data[:20], data[24:]
    crc = zlib.crc32(payload, zlib.crc32(header, TAG)) & 0xFFFFFFFF
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
    """Peak of the time signal that a packet's low band alone would add."""
    if p.low is None:
        return 0.0
    return float(np.abs(p.layer.imdct(p.low, len(p.low) * packets.FRAME)).max())


def plain_run(n: int, r: np.random.Generator, counts: collections.Counter) -> None:
    """Without a key: hostile datagrams between an honest stream's packets."""
    for hybrid in (False, True):
        stream = honest_stream(max(1, n // (2 * 4)), hybrid, r)
        tracker = Tracker(Stats())
        for k, data in enumerate(stream):
            now = 1000.0 + 0.02 * k
            _feed(packets.parse(data, TAG), tracker, now, counts, honest=True)
            for j in range(3):
                kind = KINDS[(k * 3 + j) % len(KINDS)]
                bad = hostile(kind, stream[max(0, k - int(r.integers(0, 5)))], r)
                counts["datagrams"] += 1
                t0 = time.perf_counter()
                try:
                    p = packets.parse(bad, TAG)
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


def foreign_parse_time(r: np.random.Generator, reps: int = 300) -> float:
    """Mean ms to parse (and refuse, at the session check) a hybrid packet of another session."""
    stream = honest_stream(reps, True, r)
    t0 = time.perf_counter()
    for data in stream:
        packets.parse(data, TAG)
    return (time.perf_counter() - t0) / reps * 1000


def seal(data: bytes, sealer: Sealer, index: int) -> bytes:
    """A plain datagram -> its sealed form: version 3 header in clear, the payload encrypted, the tag;
    authenticated: the header and the model tag (not sent)."""
    header = bytes([SEALED_VERSION]) + data[1:20]
    return header + sealer.seal(header + struct.pack(">I", TAG), data[24:], index)


def open_sealed(data: bytes, opener: Opener) -> packets.Packet:
    """What the receiver does with a sealed datagram (until packets.parse does it)."""
    if INTEGRATED:
        return packets.parse(data, TAG, opener=opener)
    if len(data) < 20 + 16 or len(data) > packets.MAX_DATAGRAM or data[0] != SEALED_VERSION:
        raise packets.PacketError("short", "not a sealed datagram")
    _, _, seq, ts, session = struct.unpack_from(">BBHII", data)
    payload, _ = opener.open(data[:20] + struct.pack(">I", TAG), data[20:], session, seq, hint=ts // packets.FRAME)
    return packets.parse(recrc(bytes([packets.VERSION]) + data[1:20] + b"\0" * 4 + payload), TAG)


def sealed_run(n: int, r: np.random.Generator, counts: collections.Counter) -> None:
    """With a key: every edited, replayed, moved or foreign-keyed datagram must be refused."""
    key, other = bytes(r.integers(0, 256, 32, dtype=np.uint8)), bytes(32)
    stream = honest_stream(max(1, n // 4), False, r)
    sealer, opener = Sealer(key, SESSION), Opener(key)
    wire = [seal(d, sealer, k) for k, d in enumerate(stream)]
    for k, data in enumerate(wire):
        open_sealed(data, opener)
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
                d = bytearray(seal(stream[min(len(stream) - 1, k + 1)], Sealer(other, SESSION), k + 1))
            elif kind == "random":
                d = bytearray([SEALED_VERSION]) + bytearray(r.bytes(int(r.integers(0, 200))))
            counts["sealed datagrams"] += 1
            try:
                open_sealed(bytes(d), opener)
                counts[f"forgery accepted WITH key ({kind})"] += 1
            except (packets.PacketError, SealError) as exc:
                counts[f"sealed refused: {getattr(exc, 'reason', 'parse')}"] += 1
            except Exception as exc:  # noqa: BLE001
                counts[f"traceback: {type(exc).__name__}: {str(exc)[:60]}"] += 1
        counts["sealed datagrams"] += 1


def run(datagrams: int, seed: int = 1) -> dict:
    """About ``datagrams`` plain and as many sealed datagrams -> counts, and 'failures' (tracebacks, hangs,
    honest packets refused, forgeries accepted with a key)."""
    r = np.random.default_rng(seed)
    counts: collections.Counter = collections.Counter()
    plain_run(datagrams, r, counts)
    sealed_run(datagrams, r, counts)
    failures = sum(v for k, v in counts.items() if k.startswith(("traceback", "forgery accepted WITH"))
                   or k in ("hangs", "honest packets refused after forgeries"))
    return {"counts": dict(counts), "failures": failures, "foreign_hybrid_parse_ms": foreign_parse_time(r),
            "integrated": INTEGRATED}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datagrams", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.time()
    res = run(args.datagrams, args.seed)
    for k, v in sorted(res["counts"].items()):
        print(f"{v:8d}  {k}")
    print(f"foreign hybrid packet: {res['foreign_hybrid_parse_ms']:.2f} ms to parse; sealed packets through "
          f"{'packets.parse' if res['integrated'] else 'open_sealed (packets.py not yet integrated)'}")
    print(f"{time.time() - t0:.0f} s: {res['failures']} failures (tracebacks, hangs, honest packets refused, "
          f"forgeries accepted with a key)")


if __name__ == "__main__":
    main()
