"""Receiver-side bookkeeping, no sockets and no torch.

``Tracker``       accepts parsed packets of one session: unwraps sequence numbers and timestamps, spots
                  duplicates and reordering, measures RFC 3550 interarrival jitter and network delay, and
                  refuses packets no honest sender makes (``Frontier``: nothing ahead of what the arrival
                  time allows), and revokes an end of stream when the stream goes on after it.
``JitterBuffer``  holds frames by index until their playout turn; a frame that comes after its turn is late.
``PlayoutDelay``  the adaptive buffer's depth: how late recent packets came, and the delay that covers them.
``Stats``         the numbers the receiver prints.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..constants import FRAME, SAMPLE_RATE
from ..stream.frames import Frame
from .packets import CONTEXT_KINDS, END, REASONS, UDP_IP_OVERHEAD, Packet, unwrap

JOIN_WINDOW = 50        # a stream first heard within 1 s of its start is played from its first sample
MAX_AHEAD = 3000        # frames (60 s) a packet may be ahead of playout before it is refused
DUP_WINDOW = 4096       # sequence numbers remembered for duplicate detection
REVOKE_AFTER = 2        # packets sent after an end of stream that show it was forged (the first is refused)
SPEED = 2.0             # a stream may come at most this many times faster than real time (beyond MAX_AHEAD)
SEQ_SLACK = 2           # sequence numbers a packet may be ahead of its frames (the end of stream takes one)
TICK = FRAME / SAMPLE_RATE


@dataclass
class Stats:
    packets_received: int = 0      # unique audio packets of our session (late ones included)
    packets_expected: int = 0      # from the sequence numbers (and the end-of-stream packet)
    late: int = 0                  # arrived after their frames were played (then concealed)
    duplicated: int = 0
    reordered: int = 0             # arrived after a packet with a higher sequence number
    dropped: dict = field(default_factory=lambda: {r: 0 for r in REASONS + ("implausible", "overflow")})
    frames_decoded: int = 0
    frames_concealed: int = 0
    datagrams: int = 0             # datagrams of our session, duplicates and end-of-stream included
    bytes: int = 0                 # their bytes (header + payload, without IP/UDP)
    payload_bytes: int = 0         # the audio packets' payloads (codes and low band, without headers)
    frames_received: int = 0       # the frames in those packets
    context_packets: int = 0       # those of them context-coded
    media_seconds: float = 0.0     # duration of the audio written
    jitter_ms: float | None = None  # RFC 3550 interarrival jitter (None when the sender was not paced)
    delay_ms: list = field(default_factory=list)  # per-packet network delay (sender clock -> arrival)
    end_to_end_ms: float | None = None  # measured mouth-to-ear delay (paced senders only)
    buffer_ms: float = 0.0         # the buffer's depth (adaptive: at the start)
    adaptive: bool = False
    buffer_ms_played: list = field(default_factory=list)  # adaptive: the depth at each frame played
    stretched: int = 0             # adaptive: frames inserted to deepen the buffer
    shrunk: int = 0                # adaptive: quiet frames skipped to make it shallower
    edits: list = field(default_factory=list)  # adaptive: (output sample, +n inserted / -n skipped samples)
    frames_per_packet: int = 0
    n_q: int = 0
    ended_by: str = ""

    @property
    def lost(self) -> int:
        return max(0, self.packets_expected - self.packets_received)

    @property
    def loss_rate(self) -> float:
        return self.lost / self.packets_expected if self.packets_expected else 0.0

    def wire_kbps(self, ip_udp: bool = False) -> float:
        if self.media_seconds <= 0:
            return 0.0
        extra = UDP_IP_OVERHEAD * self.datagrams if ip_udp else 0
        return (self.bytes + extra) * 8 / self.media_seconds / 1000

    @property
    def payload_bits_per_frame(self) -> float:
        """What a frame cost on average in the packets received: codes (and low band), no headers."""
        return self.payload_bytes * 8 / self.frames_received if self.frames_received else 0.0

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("delay_ms", "buffer_ms_played", "edits")}
        d.update(lost=self.lost, loss_rate=round(self.loss_rate, 4), wire_kbps=round(self.wire_kbps(), 2),
                 wire_kbps_ip_udp=round(self.wire_kbps(True), 2),
                 payload_bits_per_frame=round(self.payload_bits_per_frame, 1), delay_ms_mean=_mean(self.delay_ms),
                 delay_ms_max=max(self.delay_ms) if self.delay_ms else None, dropped=dict(self.dropped),
                 buffer_ms_mean=_mean(self.buffer_ms_played), buffer_ms_max=max(self.buffer_ms_played, default=None))
        return d

    def lines(self) -> list[str]:
        pct = lambda n: f"{100 * n / self.packets_expected:.1f}%" if self.packets_expected else "-"
        dropped = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v) or "none"
        delay = (f"mean {_mean(self.delay_ms):.1f} ms, max {max(self.delay_ms):.1f} ms" if self.delay_ms else
                 "n/a (unpaced sender)" if self.jitter_ms is None else "n/a (sender clock not comparable)")
        e2e = (f"{self.end_to_end_ms:.0f} ms measured" if self.end_to_end_ms is not None
               else "n/a (unpaced sender or playout)")
        jit = f"{self.jitter_ms:.1f} ms, RFC 3550" if self.jitter_ms is not None else "n/a (unpaced sender)"
        buf = f"jitter buffer {self.buffer_ms:.0f} ms"
        if self.adaptive and self.buffer_ms_played:
            buf = (f"adaptive jitter buffer {self.buffer_ms:.0f} ms at the start, mean {_mean(self.buffer_ms_played):.0f}, "
                   f"max {max(self.buffer_ms_played):.0f} ms ({self.stretched} frames stretched, {self.shrunk} skipped)")
        return [
            f"stream      {self.media_seconds:.2f} s, {self.n_q} codebooks, {self.frames_per_packet} frame(s)/packet, "
            f"ended by {self.ended_by}",
            f"packets     {self.packets_received} received of {self.packets_expected} sent: lost {self.lost} "
            f"({pct(self.lost)}), late {self.late} ({pct(self.late)}), duplicated {self.duplicated}, "
            f"reordered {self.reordered}",
            f"frames      {self.frames_decoded} decoded, {self.frames_concealed} concealed",
            f"dropped     {dropped}",
            f"wire rate   {self.wire_kbps():.2f} kbps with packet headers, {self.wire_kbps(True):.2f} kbps with IP/UDP",
            f"payload     {self.payload_bits_per_frame:.1f} bits per frame ({self.payload_bits_per_frame / 20:.2f} kbps "
            f"before headers), {self.context_packets} of {self.packets_received} packets context-coded",
            f"jitter      {jit}",
            f"net delay   {delay}",
            f"end-to-end  {e2e}; {buf}",
        ]


def stream_aligned(audio: np.ndarray, edits: list) -> np.ndarray:
    """Undo an adaptive buffer's stretches and skips, for comparing the output with the input sample by
    sample: inserted samples are cut out, skipped ones come back as silence."""
    parts, at = [], 0
    for pos, n in edits:
        parts.append(audio[at:pos])
        if n > 0:
            at = pos + n
        else:
            parts.append(np.zeros(-n, audio.dtype))
            at = pos
    parts.append(audio[at:])
    return np.concatenate(parts)


def _mean(xs) -> float | None:
    return float(np.mean(xs)) if len(xs) else None


class Frontier:
    """How far into the stream a packet may reach, tied to its arrival: by ``arrival``, an honest sender has
    sent at most ``MAX_AHEAD`` frames past its first packet, plus ``speed`` times the frames that play in the
    time since that packet arrived; a sequence number advances no faster than frames do (every packet
    holds one or more); and nothing is more than MAX_AHEAD before the first packet. Forged packets cannot
    walk it: it moves with the clock, not with the packets. ``speed=None``: no bound by time (an unpaced
    stream)."""

    def __init__(self, speed: float | None = SPEED):
        self.speed = speed
        self.origin: tuple[float, int, int] | None = None  # first packet: arrival, first frame, sequence number

    def start(self, arrival: float, frame: int, seq: int) -> None:
        if self.origin is None:
            self.origin = (arrival, frame, seq)

    def allows(self, arrival: float, frame: int, seq: int) -> bool:
        """Whether a packet arriving at ``arrival``, its frames ending at ``frame``, may have number ``seq``."""
        if self.origin is None:
            return True
        t0, frame0, seq0 = self.origin
        if seq - seq0 > max(0, frame - frame0) + SEQ_SLACK or min(seq - seq0, frame - frame0) < -MAX_AHEAD:
            return False
        return self.speed is None or frame - frame0 <= MAX_AHEAD + self.speed * max(0.0, arrival - t0) / TICK


class Tracker:
    """Follows one session's packets. ``accept`` returns the packet's first frame index, or None to drop it.
    ``speed``: see ``Frontier`` (None for a stream that is not paced, which may come any faster)."""

    def __init__(self, stats: Stats, session: int | None = None, speed: float | None = SPEED):
        self.stats, self.session = stats, session
        self.frontier = Frontier(speed)
        self.beyond_end = 0                 # packets sent after the end of stream, right after it
        self.seq_ref: int | None = None     # highest extended sequence number so far
        self.ts_ref: int | None = None      # highest extended timestamp so far
        self.base_seq: int | None = None    # sequence number of the stream's first packet
        self.start_frame: int | None = None
        self.end_seq: int | None = None     # sequence number of the end-of-stream packet
        self.total_samples: int | None = None
        self.seen: set[int] = set()
        self.prev_transit: float | None = None
        self.jitter = 0.0                   # in timestamp units (samples), as in RFC 3550

    def accept(self, p: Packet, arrival: float) -> int | None:
        st = self.stats
        if self.session is None:
            self.session = p.session           # lock onto the first session heard
        elif p.session != self.session:
            st.dropped["foreign"] += 1
            return None
        seq = unwrap(p.seq, self.seq_ref, 16)
        ts = unwrap(p.timestamp, self.ts_ref, 32)
        if not self._plausible(p, seq, ts, arrival):
            st.dropped["implausible"] += 1
            return None
        st.datagrams += 1
        st.bytes += p.size
        if p.kind == END:  # a later end (higher sequence number) supersedes one taken before
            if self.end_seq is None or seq > self.end_seq:
                self.end_seq, self.total_samples = seq, p.total_samples
            return None
        if self.end_seq is not None and seq >= self.end_seq:  # the stream went on after its end: that was forged
            self.end_seq = self.total_samples = None
            self.beyond_end = 0
        if seq in self.seen:
            st.duplicated += 1
            return None
        self.seen.add(seq)
        if len(self.seen) > DUP_WINDOW:
            top = max(seq, self.seq_ref or seq)
            self.seen = {s for s in self.seen if s > top - DUP_WINDOW // 2}
        if self.base_seq is None:
            frame = ts // FRAME
            # heard near the start: play from sample 0 (earlier packets count as lost); else join from here
            self.start_frame = 0 if frame < JOIN_WINDOW else frame
            self.base_seq = 0 if frame < JOIN_WINDOW else seq  # streams number their packets from 0
        if self.seq_ref is not None and seq < self.seq_ref:
            st.reordered += 1
        self.seq_ref = seq if self.seq_ref is None else max(self.seq_ref, seq)
        self.ts_ref = ts if self.ts_ref is None else max(self.ts_ref, ts)
        self.frontier.start(arrival, ts // FRAME, seq)
        st.packets_received += 1
        st.payload_bytes += p.payload
        st.frames_received += len(p.frames)
        st.context_packets += p.kind in CONTEXT_KINDS
        st.n_q, st.frames_per_packet = p.n_q, max(st.frames_per_packet, len(p.frames))
        self._timing(p, ts, arrival)
        return ts // FRAME

    def _plausible(self, p: Packet, seq: int, ts: int, arrival: float) -> bool:
        """Guards against a well-formed packet with absurd numbers (a buggy or hostile sender): nothing may
        make the receiver buffer or conceal more than MAX_AHEAD frames ahead of the highest heard, or reach
        further than its arrival time allows (``Frontier``). Only bounds ahead: a packet far behind costs
        nothing (the jitter buffer finds it late), and bounds behind the references are what forged packets
        far ahead would use to lock the real ones out."""
        if ts % FRAME or ts < 0:
            return False
        if not self.frontier.allows(arrival, ts // FRAME + len(p.frames), seq):
            return False
        if self.ts_ref is not None and (ts - self.ts_ref) // FRAME > MAX_AHEAD:
            return False
        if self.seq_ref is not None and seq - self.seq_ref > MAX_AHEAD:
            return False
        if p.kind == END:  # the end timestamp is the frame after the last one: it must agree with the length
            return -(-p.total_samples // FRAME) * FRAME == ts
        if self.total_samples is None or ts < self.total_samples:  # not beyond the announced end ...
            return True
        if seq >= self.end_seq:  # ... unless the stream goes on: a second packet sent after the end revokes it
            self.beyond_end += 1
            return self.beyond_end >= REVOKE_AFTER
        return False

    def _timing(self, p: Packet, ts: int, arrival: float) -> None:
        transit = arrival * SAMPLE_RATE - ts  # RFC 3550 A.8: J += (|D| - J) / 16, in timestamp units
        if self.prev_transit is not None:
            self.jitter += (abs(transit - self.prev_transit) - self.jitter) / 16
        self.prev_transit = transit
        self.stats.jitter_ms = self.jitter / SAMPLE_RATE * 1000
        delay = ((int(arrival * 1000) - p.send_ms + (1 << 31)) % (1 << 32)) - (1 << 31)
        if -1000 < delay < 60_000:  # otherwise the two clocks are not comparable
            self.stats.delay_ms.append(float(delay))

    def finish(self) -> None:
        """Final packet counts: expected = every sequence number from the first to the end-of-stream (or highest)."""
        if self.base_seq is None:
            return
        last = self.end_seq - 1 if self.end_seq is not None else self.seq_ref
        self.stats.packets_expected = max(last - self.base_seq + 1, self.stats.packets_received)

    @property
    def end_frame(self) -> int | None:
        return None if self.total_samples is None else -(-self.total_samples // FRAME)


class JitterBuffer:
    """Frames waiting for playout, by frame index. ``pop`` plays frame ``next`` (None: it is missing)."""

    def __init__(self, start: int = 0, capacity: int = MAX_AHEAD):
        self.next, self.capacity = start, capacity
        self.slots: dict[int, Frame] = {}
        self.highest = start - 1

    def put(self, index: int, frame: Frame) -> str:
        """'ok', 'late' (its turn has passed), 'duplicate' or 'overflow' (too far ahead)."""
        if index < self.next:
            return "late"
        if index in self.slots:
            return "duplicate"
        if index >= self.next + self.capacity:
            return "overflow"
        self.slots[index] = frame
        self.highest = max(self.highest, index)
        return "ok"

    def pop(self) -> Frame | None:
        frame = self.slots.pop(self.next, None)
        self.next += 1
        return frame

    def __len__(self) -> int:
        return len(self.slots)


class PlayoutDelay:
    """The adaptive jitter buffer's target depth, in frames.

    Each arriving packet reports its *lateness*: how many frames after its nominal turn it came (on the
    wall clock: its arrival against the first packet's; on the stream's clock: how far the newest frame
    heard was already past it). The target is the ``quantile`` of the last ``window`` latenesses plus
    ``margin`` frames, rounded up and kept within [``low``, ``high``]: deep enough that all but the latest few
    packets come in time, and no deeper, so the delay falls again when the network calms down. Packets that
    never arrive say nothing, so losses alone do not deepen the buffer.
    """

    def __init__(self, low: int = 1, high: int = 50, window: int = 250, quantile: float = 0.98,
                 margin: float = 0.5):
        if not 1 <= low <= high:
            raise ValueError("need 1 <= low <= high")
        self.low, self.high, self.quantile, self.margin = low, high, quantile, margin
        self.lateness: deque[float] = deque(maxlen=window)

    def observe(self, lateness_frames: float) -> None:
        self.lateness.append(float(lateness_frames))

    @property
    def target(self) -> int:
        if not self.lateness:
            return self.low
        need = float(np.quantile(np.fromiter(self.lateness, float), self.quantile)) + self.margin
        return int(min(self.high, max(self.low, np.ceil(need))))
