"""The tracker under attack, without a key: forged packets cannot walk the plausibility window forward,
and a forged end of stream cannot cut off what was heard (no sockets, no torch)."""
import numpy as np

from audiocodec.stream.frames import frames_of
from audiocodec.transport import packets
from audiocodec.transport.jitter import MAX_AHEAD, Stats, Tracker

FRAME = packets.FRAME
SESSION = 0xA1


def _audio(seq, frame, session=SESSION):
    return packets.parse(packets.build_audio(seq, frame * FRAME, session, frames_of(np.zeros((3, 1), dtype=int))))


def _end(seq, frames):
    return packets.parse(packets.build_end(seq, frames * FRAME, SESSION, frames * FRAME))


def _stream(tracker, seqs, t0=100.0):
    """Real packets, one frame each, arriving in real time (20 ms apart): the frames accepted."""
    return [tracker.accept(_audio(k, k), t0 + k * 0.02) for k in seqs]


def test_walking_the_window_forward_fails():
    """Five forged packets, each about 2,990 frames ahead of the last, arrive within a second: today's
    window would follow them until every real packet is refused."""
    st = Stats()
    tr = Tracker(st)
    assert _stream(tr, range(50)) == list(range(50))
    for i in range(1, 6):
        tr.accept(_audio(50 + 2990 * i, 49 + 2990 * i), 101.0 + 0.001 * i)
    assert st.dropped["implausible"] == 4  # the first is within reach (60 s ahead); the others are not
    got = _stream(tr, range(50, 500))
    assert got == list(range(50, 500)) and st.packets_received == 500 - 50 + 50 + 1
    assert tr.ts_ref // FRAME < 3100  # the buffer can be stretched by MAX_AHEAD frames at most


def test_forged_packets_far_behind_do_not_lock_out_either():
    """The walk backwards: forged packets each ~2,990 frames behind the last."""
    st = Stats()
    tr = Tracker(st)
    start = 100_000  # a receiver that joined a long stream
    assert [tr.accept(_audio(k, start + k), 100 + 0.02 * k) for k in range(50)] == [start + k for k in range(50)]
    for i in range(1, 6):
        tr.accept(_audio(50 - 2990 * i, start + 49 - 2990 * i), 101.0)
    assert [tr.accept(_audio(k, start + k), 100 + 0.02 * k) for k in range(50, 100)] == [start + k for k in range(50, 100)]


def test_frontier_moves_with_time():
    tr = Tracker(Stats())
    tr.accept(_audio(0, 0), 0.0)
    assert tr.accept(_audio(1, MAX_AHEAD - 1), 0.0) == MAX_AHEAD - 1  # within MAX_AHEAD: an early burst
    assert tr.accept(_audio(2, MAX_AHEAD + 100), 0.0) is None          # beyond: refused ...
    assert tr.accept(_audio(3, MAX_AHEAD + 100), 1.1) == MAX_AHEAD + 100  # ... until 1.1 s later (2 x 55 frames)
    assert tr.accept(_audio(500, 100), 1.1) is None  # a sequence number ahead of its frames
    unpaced = Tracker(Stats(), speed=None)  # an unpaced stream may come any faster
    unpaced.accept(_audio(0, 0), 0.0)
    for k in range(1, 40):
        assert unpaced.accept(_audio(k, 100 * k), 0.0) == 100 * k


def test_forged_end_is_revoked_when_the_stream_goes_on():
    st = Stats()
    tr = Tracker(st)
    _stream(tr, range(100))
    tr.accept(_end(100, 90), 102.0)  # its length disagrees with its timestamp: refused
    assert tr.end_seq is None and st.dropped["implausible"] == 1
    tr.accept(_end(100, 100), 102.0)  # plausible: taken for now ...
    assert tr.end_frame == 100
    got = _stream(tr, range(100, 110))  # ... until the stream goes on: a stray packet after it is refused, a
    assert got == [None] + list(range(101, 110))  # second one shows the end was forged
    assert tr.end_frame is None and st.dropped["implausible"] == 2
    tr.accept(_end(110, 110), 103.0)
    assert tr.end_frame == 110


def test_forged_audio_ahead_does_not_block_the_real_end():
    st = Stats()
    tr = Tracker(st)
    _stream(tr, range(100))
    assert tr.accept(_audio(150, 150), 102.0) == 150  # forged, within reach
    tr.accept(_end(100, 100), 102.0)
    assert tr.end_frame == 100  # the real end still ends the stream where it ends


def test_honest_stream_with_loss_and_reordering_unchanged():
    st = Stats()
    tr = Tracker(st)
    order = [k for k in range(300) if k % 7] + [k for k in range(300) if not k % 7][::-1]
    got = [tr.accept(_audio(k, k), 100 + 0.02 * min(k, 280)) for k in order]
    assert sorted(got) == list(range(300)) and st.dropped["implausible"] == 0
    tr.accept(_end(300, 300), 106.0)
    tr.finish()
    assert tr.end_frame == 300 and st.packets_expected == 300 and st.reordered > 0
