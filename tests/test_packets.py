"""Packet format, hostile datagrams, loss/duplicate/reorder bookkeeping, jitter buffer, network model.
No sockets and no model here (see test_transport.py)."""
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiocodec.stream.frames import Frame, codes_of, frames_of
from audiocodec.transport import packets
from audiocodec.transport.jitter import JitterBuffer, PlayoutDelay, Stats, Tracker, stream_aligned
from audiocodec.transport.link import NetworkModel
from audiocodec.transport.packets import AUDIO, END, HEADER, HEADER_SIZE, PacketError, build_audio, build_end, parse


@given(n_q=st.integers(1, 32), frames=st.integers(1, 10), seq=st.integers(0, 2**16 - 1),
       ts=st.integers(0, 2**32 - 1), session=st.integers(0, 2**32 - 1), send=st.integers(0, 2**32 - 1),
       seed=st.integers(0, 2**32 - 1))
def test_audio_round_trip(n_q, frames, seq, ts, session, send, seed):
    codes = np.random.default_rng(seed).integers(0, 1024, (n_q, frames))
    data = build_audio(seq, ts, session, frames_of(codes), send)
    assert len(data) == HEADER_SIZE + (n_q * frames * 10 + 7) // 8
    p = parse(data)
    assert (p.kind, p.seq, p.timestamp, p.session, p.n_q, len(p.frames), p.send_ms, p.size) == \
        (AUDIO, seq, ts, session, n_q, frames, send, len(data))
    assert np.array_equal(codes_of(p.frames), codes)


def test_end_round_trip_and_sizes():
    p = parse(build_end(7, 320 * 9, 0xDEADBEEF, 2877, 5))
    assert (p.kind, p.seq, p.timestamp, p.session, p.total_samples) == (END, 7, 2880, 0xDEADBEEF, 2877)
    # 6 kbps, one frame per packet: 24-byte header + 15 bytes of codes
    assert len(build_audio(0, 0, 1, [Frame(np.zeros(12, dtype=int))])) == 39
    assert HEADER_SIZE == 24 and HEADER.size == 20


def test_the_crc_is_keyed_by_the_model():
    """A packet checks out only against the tag of the weights that made its codes."""
    a, b = zlib.crc32(b"721b85551d43847c"), zlib.crc32(b"0123456789abcdef")  # as stream.engine.model_tag makes them
    data = build_audio(3, 960, 5, [Frame(np.arange(12))], 0, a)
    assert parse(data, a).seq == 3
    for tag in (b, 0):
        with pytest.raises(PacketError) as e:
            parse(data, tag)
        assert e.value.reason == "corrupt"
    assert parse(build_end(4, 1280, 5, 1000, 0, b), b).total_samples == 1000


def _reseal(header: bytes, payload: bytes) -> bytes:
    """A datagram with a *valid* CRC around arbitrary fields (what a buggy or hostile sender could emit)."""
    crc = zlib.crc32(payload, zlib.crc32(header)) & 0xFFFFFFFF
    return header + struct.pack(">I", crc) + payload


@pytest.mark.parametrize("data, reason", [
    (b"", "short"),
    (b"\x01" * 23, "short"),
    (b"\x00" * 2000, "oversized"),
    (b"\x01" + build_audio(0, 0, 1, [Frame(np.zeros(3, dtype=int))])[1:], "version"),
    (build_audio(0, 0, 1, [Frame(np.zeros(3, dtype=int))])[:-1], "corrupt"),          # truncated
    (build_audio(0, 0, 1, [Frame(np.zeros(3, dtype=int))]) + b"\0", "corrupt"),       # trailing byte
    (_reseal(HEADER.pack(2, 0, 0, 0, 1, 3, 1, 65535, 0), b"\0" * 4), "malformed"),  # claims 64 KB, has 4 bytes
    (_reseal(HEADER.pack(2, 0, 0, 0, 1, 0, 1, 0, 0), b""), "malformed"),           # no codebooks
    (_reseal(HEADER.pack(2, 0, 0, 0, 1, 3, 11, 38, 0), b"\0" * 38), "malformed"),  # too many frames
    (_reseal(HEADER.pack(2, 0, 0, 0, 1, 33, 1, 42, 0), b"\0" * 42), "malformed"),  # too many codebooks
    (_reseal(HEADER.pack(2, 0, 0, 0, 1, 3, 2, 5, 0), b"\0" * 5), "malformed"),     # 60 bits need 8 bytes
    (_reseal(HEADER.pack(2, 9, 0, 0, 1, 3, 1, 4, 0), b"\0" * 4), "malformed"),     # unknown type
    (_reseal(HEADER.pack(2, 1, 0, 0, 1, 3, 1, 8, 0), b"\0" * 8), "malformed"),     # end packet with codes
    (_reseal(HEADER.pack(2, 1, 0, 0, 1, 0, 0, 4, 0), b"\0" * 4), "malformed"),     # end packet, short payload
])
def test_bad_datagrams_are_refused_with_a_reason(data, reason):
    with pytest.raises(PacketError) as e:
        parse(data)
    assert e.value.reason == reason


def test_every_bit_flip_is_detected():
    good = build_audio(1234, 320 * 77, 42, frames_of(np.arange(36).reshape(12, 3)), 99)
    for i in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[i] ^= 1 << bit
            with pytest.raises(PacketError) as e:
                parse(bytes(bad))
            assert e.value.reason in ("version", "context", "corrupt")  # type 4: context-coded


@settings(max_examples=300)
@given(st.binary(max_size=1500))
def test_random_bytes_never_crash(data):
    try:
        parse(data)
    except PacketError:
        pass


def test_unwrap():
    assert packets.unwrap(3, 65534, 16) == 65539
    assert packets.unwrap(65535, 65537, 16) == 65535
    assert packets.unwrap(100, None, 16) == 100
    assert packets.unwrap(5, 2**32 + 10, 32) == 2**32 + 5


def _pkt(seq, frame, session=1, frames=1, kind=AUDIO, total=0):
    if kind == END:
        return parse(build_end(seq, frame * 320, session, total))
    return parse(build_audio(seq, frame * 320, session, frames_of(np.full((3, frames), frame % 1024))))


def test_tracker_counts_loss_duplicates_reordering_and_foreign_sessions():
    st_ = Stats()
    tr = Tracker(st_)
    order = [0, 1, 3, 2, 2, 5, 6, 6]             # 4 lost, 2 reordered, 2 and 6 duplicated
    frames = [tr.accept(_pkt(s, s), 0.02 * s) for s in order]
    assert frames == [0, 1, 3, 2, None, 5, 6, None]
    assert tr.accept(_pkt(7, 7, session=2), 0.2) is None          # another session
    assert tr.accept(_pkt(8, 8, kind=END, total=8 * 320 - 17), 0.2) is None
    tr.finish()
    assert (st_.packets_received, st_.packets_expected, st_.lost, st_.duplicated, st_.reordered) == (6, 8, 2, 2, 1)
    assert st_.dropped["foreign"] == 1 and tr.total_samples == 8 * 320 - 17 and tr.end_frame == 8
    assert tr.accept(_pkt(9, 9), 0.3) is None and st_.dropped["implausible"] == 1   # beyond the announced end


def test_tracker_unwraps_sequence_numbers_and_timestamps():
    st_ = Stats()
    tr = Tracker(st_)
    first = 2**16 - 3
    for i in range(6):
        data = build_audio((first + i) & 0xFFFF, ((2**32 // 320 - 2 + i) * 320) & 0xFFFFFFFF, 5,
                           [Frame(np.zeros(3, dtype=int))])
        assert tr.accept(parse(data), 0.02 * i) == 2**32 // 320 - 2 + i
    tr.finish()
    assert (st_.packets_received, st_.packets_expected, st_.lost) == (6, 6, 0)


def test_tracker_rfc3550_jitter():
    def jitter(delays):
        st_ = Stats()
        tr = Tracker(st_)
        for s, d in enumerate(delays):
            tr.accept(_pkt(s, s), 1000.0 + 0.02 * s + d)
        return st_.jitter_ms
    assert jitter([0.05] * 100) == pytest.approx(0, abs=1e-6)         # steady delay: no jitter
    assert jitter([0.05, 0.06] * 100) == pytest.approx(10, abs=0.01)  # |D| = 10 ms every packet
    assert jitter([0.05, 0.06] * 4) == pytest.approx(10 * (1 - (15 / 16) ** 7), abs=0.01)  # J += (|D| - J) / 16


def test_jitter_buffer_orders_and_rejects_late_frames():
    jb = JitterBuffer(start=0, capacity=10)
    assert jb.put(1, "b") == "ok" and jb.put(0, "a") == "ok" and jb.put(1, "x") == "duplicate"
    assert jb.put(50, "far") == "overflow"
    assert [jb.pop(), jb.pop(), jb.pop()] == ["a", "b", None]
    assert jb.put(2, "late") == "late" and jb.next == 3 and len(jb) == 0


def test_playout_delay_covers_recent_lateness_and_forgets_it():
    d = PlayoutDelay(low=1, high=20, window=100)
    assert d.target == 1                                   # nothing heard yet
    for late in np.random.default_rng(0).uniform(0, 6, 100):  # packets up to 6 frames (120 ms) late
        d.observe(late)
    assert d.target == 7                                   # 98th percentile (5.9) + half a frame, rounded up
    d.observe(1000)                                        # one absurd packet does not move a quantile
    assert d.target == 7
    for _ in range(100):                                   # the network calms down: the window forgets
        d.observe(0.0)
    assert d.target == 1
    for _ in range(100):
        d.observe(500.0)
    assert d.target == 20                                  # never deeper than its bound
    with pytest.raises(ValueError):
        PlayoutDelay(low=0)


def test_stream_aligned_undoes_stretches_and_skips():
    played = np.arange(10, dtype=np.float32)
    # 2 samples inserted after output sample 3; 3 stream samples skipped at output sample 6
    edits = [(3, 2), (6, -3)]
    stream = stream_aligned(played, edits)
    assert stream.tolist() == [0, 1, 2, 5, 0, 0, 0, 6, 7, 8, 9]
    assert stream_aligned(played, []).tolist() == played.tolist()


@pytest.mark.parametrize("burst", [False, True])
def test_network_model_loss_rate_and_bursts(burst):
    m = NetworkModel(loss=0.2, burst=burst, burst_len=4, seed=3)
    lost = np.array([m.lost() for _ in range(20000)])
    assert abs(lost.mean() - 0.2) < 0.02
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, lost.astype(int), 0])))[::2]  # lengths of loss runs
    assert abs(runs.mean() - (4 if burst else 1 / 0.8)) < 0.5
    again = NetworkModel(loss=0.2, burst=burst, burst_len=4, seed=3)
    assert np.array_equal(lost, [again.lost() for _ in range(20000)])  # seeded


def test_network_model_jitter_reorders_and_duplicates():
    m = NetworkModel(delay_ms=40, jitter_ms=30, duplicate=0.1, corrupt=0.1, seed=0)
    fates = [m.fate(bytes([i % 256]) * 30, i * 0.02) for i in range(2000)]
    arrivals = [a for f in fates for a, _ in f]
    assert all(0.01 - 1e-9 <= a - i * 0.02 <= 0.07 + 1e-9 for i, f in enumerate(fates) for a, _ in f)
    assert sum(len(f) == 2 for f in fates) > 100
    assert sum(b != bytes([i % 256]) * 30 for i, f in enumerate(fates) for _, b in f) > 100
    assert np.sum(np.diff(arrivals) < 0) > 100  # +-30 ms on 20 ms spacing: packets overtake each other
    with pytest.raises(ValueError):
        NetworkModel(loss=1.0)


def test_transport_imports_without_torch():
    """The transport package is bytes and sockets: importable with torch blocked (only its CLI loads the model)."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked")
sys.meta_path.insert(0, Block())
import audiocodec.transport, audiocodec.transport.packets, audiocodec.transport.jitter, audiocodec.transport.link
import audiocodec.transport.sender, audiocodec.transport.receiver, audiocodec.transport.sinks
import audiocodec.transport.simulate, audiocodec.transport.commands
assert "torch" not in sys.modules and "audiocodec.model" not in sys.modules
try:
    import audiocodec.stream.decoder
except ImportError:
    print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_tracker_refuses_absurd_but_well_formed_packets():
    st_ = Stats()
    tr = Tracker(st_)
    assert tr.accept(_pkt(0, 0), 0.0) == 0
    assert tr.accept(_pkt(1, 10**6), 0.02) is None                   # 5.5 hours ahead
    assert tr.accept(_pkt(1, 1, kind=END, total=10**12), 0.02) is None  # end disagrees with its timestamp
    assert tr.accept(_pkt(40000 % 65536, 2), 0.02) is None            # sequence number far away
    assert st_.dropped["implausible"] == 3 and tr.total_samples is None
    assert tr.accept(_pkt(1, 1), 0.02) == 1


def test_packet_doc_matches_the_code():
    import os
    import re

    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "packets.md")).read()
    header = doc.split("## Header")[1].split("**Audio payload**")[0]
    rows = [tuple(map(int, m)) for m in re.findall(r"^\| (\d+) \| (\d+|…) \|", header, re.M) if m[1] != "…"]
    offsets = [o for o, _ in rows]
    assert offsets == sorted(offsets) and all(o + n == nxt for (o, n), nxt in zip(rows, offsets[1:]))
    assert rows[-1][0] + rows[-1][1] == HEADER_SIZE == 24
    assert f"{packets.MAX_DATAGRAM} bytes" in doc


class _LabelDecoder:
    """Stands in for the codec so the receiver's bookkeeping can be checked exhaustively: frame k decodes to
    320 samples of value k, a concealed frame to -1 (no latency, unlike the real decoder)."""
    max_rows, tag = 32, 0

    def decode(self, frames):
        (frame,) = frames
        return np.full(320, float(frame.codes[0]), dtype=np.float32)

    def conceal(self):
        return np.full(320, -1.0, dtype=np.float32)

    def flush(self):
        return np.zeros(0, dtype=np.float32)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 40), fpp=st.integers(1, 3), depth=st.integers(1, 5), data=st.data())
def test_receiver_playout_keeps_order_and_duration_whatever_the_network(n, fpp, depth, data):
    from audiocodec.transport.receiver import Receiver
    from audiocodec.transport.sinks import ArraySink

    total = n * 320 - data.draw(st.integers(0, 319))
    pkts = [build_audio(i, k * 320, 5, frames_of(np.arange(k, min(k + fpp, n))[None].repeat(2, 0)))
            for i, k in enumerate(range(0, n, fpp))]
    kept = data.draw(st.lists(st.sampled_from(range(len(pkts))), max_size=2 * len(pkts)))  # loss, dups, order
    sink = ArraySink()
    rx = Receiver(None, _LabelDecoder(), sink, buffer_ms=20 * depth, paced=False)
    for i in kept:
        rx._handle(pkts[i], None, 0.0, 0.0)
        rx._play_due()
    rx._handle(build_end(len(pkts), n * 320, 5, total), None, 0.0, 0.0)
    rx._play_due()
    rx._finish()
    y = sink.audio
    if not kept:
        assert len(y) == 0
        return
    assert len(y) == total
    labels = y[::320]
    played = labels[labels >= 0].astype(int)
    assert np.all(np.diff(played) > 0) and np.all(labels[labels >= 0] == np.flatnonzero(labels >= 0))
    s = rx.stats
    assert s.frames_decoded + s.frames_concealed == n
    assert s.packets_received == len(set(kept)) and s.duplicated == len(kept) - len(set(kept))
    assert s.packets_expected == len(pkts) and s.lost == len(pkts) - len(set(kept))
