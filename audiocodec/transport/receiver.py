"""The receiving side: UDP -> packets -> jitter buffer -> decoder (or concealment) -> sink, with statistics.

The decoder (``stream.decoder.FrameDecoder``) has ``decode([frame]) -> samples``, ``conceal() -> samples`` (a
stand-in for a missing frame), ``flush() -> samples``, ``use_low_band(layer)`` (the stream is hybrid: called
on its first packet), ``max_rows`` (more rows of codes are refused) and ``tag`` (its model's packet tag).
Context-coded packets are decoded with ``context``, the model's ``ContextModel`` (None: refused, counted
'context'). No torch here.

Playout is one frame per turn and never skips, so the output has exactly the stream's duration whatever
the network did: a frame that is missing at its turn is concealed, and its packet, if it still comes, is
counted late and dropped. When is a frame's turn?
  paced   (default) on the wall clock: ``buffer_ms`` after the first packet's arrival said it would be due;
  unpaced (--fast)  on the stream's clock: once a frame ``buffer_ms`` later has arrived, or the stream ended.
A reader thread timestamps datagrams as they arrive, so decoding does not delay the timing statistics.

Who may feed the stream: with ``key`` only sealed packets that open under it (``crypto.Opener``: forged,
replayed and foreign ones are counted and dropped before anything else looks at them); with ``from_addr``
only datagrams from that address (others are counted foreign before parsing); otherwise the first session
heard. A stream that stops without its end-of-stream packet ends, after ``timeout``, at the highest frame
that arrived on time (not one that came implausibly early: a forged packet far ahead adds no silence).

Adaptive (``adaptive=True``, ``--adaptive``): ``buffer_ms`` is only the starting depth. ``PlayoutDelay`` follows
how late packets come and sets a target depth; the receiver moves towards it one frame at a time, the way
VoIP receivers do, trading a little duration for fewer late frames or less delay:
  deeper      when a frame is missing at its turn (or the last frame played was quiet), play a stand-in
              (the concealment) and give that frame one more turn instead of writing it off;
  shallower   when the last frame played was quiet, decode the next one (the decoder follows the stream)
              without playing it: 20 ms less delay, cut out of a pause.
So the output is a few frames longer or shorter than the stream; a fixed buffer keeps the exact duration.
"""
from __future__ import annotations

import queue
import socket
import threading
import time

import numpy as np

from .crypto import Opener
from .jitter import SPEED, JitterBuffer, PlayoutDelay, Stats, Tracker
from ..constants import FRAME, SAMPLE_RATE
from .packets import PacketError, parse, unwrap

TICK = FRAME / SAMPLE_RATE  # 20 ms
QUEUE_LIMIT = 100_000      # datagrams waiting to be handled; more than this are dropped (counted "overflow")
MAX_ADAPTIVE_FRAMES = 50   # the adaptive buffer grows to 1 s at most (or the starting depth, if deeper)
QUIET = 0.05               # a frame is quiet below this share of the recent loudest frame's RMS
EARLY_FRAMES = 50          # paced: a packet more than 1 s ahead of its turn did not come "on time"


class Receiver:
    def __init__(self, sock: socket.socket, decoder, sink, buffer_ms: float = 80.0, timeout: float = 5.0,
                 paced: bool = True, session: int | None = None, adaptive: bool = False, key: bytes | None = None,
                 from_addr: tuple | None = None, context=None):
        self.sock, self.decoder, self.sink, self.context = sock, decoder, sink, context
        self.opener = Opener(key, session) if key is not None else None
        self.from_addr = from_addr      # (host, port) or (host, None): only datagrams from there
        self.tag = decoder.tag  # packets' CRCs must start from our model's tag
        self.buffer_frames = max(1, round(buffer_ms / 1000 / TICK))
        self.timeout, self.paced = timeout, paced
        self.stats = Stats(buffer_ms=self.buffer_frames * TICK * 1000, adaptive=adaptive)
        self.delay = PlayoutDelay(high=max(self.buffer_frames, MAX_ADAPTIVE_FRAMES)) if adaptive else None
        self.offset = 0                 # samples written minus stream samples played (adaptive stretches/skips)
        self.level, self.quiet = 0.0, True  # recent loudest frame RMS; whether the last frame played was quiet
        self.tracker = Tracker(self.stats, session, speed=SPEED if paced else None)
        self.on_time = -1               # the highest frame that arrived on time (where a timeout ends)
        self.queue: queue.Queue = queue.Queue(QUEUE_LIMIT)
        self.done = threading.Event()
        self.jb: JitterBuffer | None = None
        self.anchor = 0.0               # monotonic time at which frame 0 would have arrived (first packet's view)
        self.origin: float | None = None  # sender's wall clock at sample 0 (from send times), for end-to-end delay
        self.send_span = [None, None]   # (first, last) full send time in s, to tell whether the sender was paced
        self.written = 0
        self.e2e: list[tuple[float, int]] = []
        self.finished = False

    # ---- socket ----------------------------------------------------------------------------------
    def _read(self) -> None:
        self.sock.settimeout(0.05)
        while not self.done.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                self.queue.put_nowait((data, addr, time.time(), time.monotonic()))
            except queue.Full:
                self.stats.dropped["overflow"] += 1

    # ---- packets ---------------------------------------------------------------------------------
    def _from_elsewhere(self, addr) -> bool:
        host, port = self.from_addr
        return addr[0] != host or (port is not None and addr[1] != port)

    def _handle(self, data: bytes, addr, wall: float, mono: float) -> bool:
        """Parse and file one datagram. True if it belonged to our stream."""
        st = self.stats
        if self.from_addr is not None and self._from_elsewhere(addr):
            st.dropped["foreign"] += 1
            return False
        try:
            p = parse(data, self.tag, self.opener, self.tracker.session, self.context)
        except PacketError as exc:
            st.dropped[exc.reason] += 1
            return False
        if p.n_q > self.decoder.max_rows:
            st.dropped["malformed"] += 1
            return False
        frame = self.tracker.accept(p, wall)
        if p.session != self.tracker.session:
            return False  # another session: counted by the tracker
        if frame is None:
            return True  # end-of-stream, duplicate or implausible: heard, nothing to buffer
        self._clock(p, frame, wall, mono)
        lateness = self._lateness(frame, len(p.frames), mono)
        if self.delay is not None:
            self.delay.observe(lateness)
        if not self.paced or lateness >= -(EARLY_FRAMES + self.buffer_frames):
            self.on_time = max(self.on_time, frame + len(p.frames) - 1)
        late = False
        for i, f in enumerate(p.frames):
            r = self.jb.put(frame + i, f)
            late |= r == "late"
            if r == "overflow":
                st.dropped["overflow"] += 1
                break
        st.late += late
        return True

    def _clock(self, p, frame: int, wall: float, mono: float) -> None:
        if self.jb is None:
            self.jb = JitterBuffer(self.tracker.start_frame)
            self.anchor = mono - (frame + len(p.frames)) * TICK
            if p.layer is not None:  # a hybrid stream
                self.decoder.use_low_band(p.layer)
        sent = unwrap(p.send_ms, int(wall * 1000), 32) / 1000  # full wall-clock send time
        origin = sent - (frame + len(p.frames)) * TICK               # when the sender's "microphone" started
        self.origin = origin if self.origin is None else min(self.origin, origin)
        first, last = self.send_span
        self.send_span = [(sent, frame) if first is None or sent < first[0] else first,
                          (sent, frame) if last is None or sent > last[0] else last]

    def _lateness(self, frame: int, n: int, mono: float) -> float:
        """Frames after its nominal turn that a packet holding frames [frame, frame + n) arrived."""
        if self.paced:
            return (mono - (self.anchor + (frame + n) * TICK)) / TICK
        return max(0, self.jb.highest - (frame + n - 1))  # stream clock: how far the newest frame was past it

    def _deadline(self, k: int) -> float:
        return self.anchor + (k + self.stats.frames_per_packet) * TICK + self.buffer_frames * TICK

    # ---- playout ---------------------------------------------------------------------------------
    def _write(self, x: np.ndarray, inserted: bool = False) -> None:
        total = self.tracker.total_samples
        if total is not None and not inserted:
            x = x[:max(0, total - self.jb_start * FRAME - (self.written - self.offset))]
        if len(x):
            self.sink.write(x)
            if inserted:
                self.offset += len(x)
                self.stats.edits.append((self.written, len(x)))
            else:  # (when, which stream sample was playing) for the end-to-end delay
                self.e2e.append((time.time(), self.written - self.offset + len(x) // 2))
            self.written += len(x)
            if self.delay is not None:  # only the adaptive buffer asks whether the last frame was quiet
                rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
                self.level = max(rms, 0.995 * self.level)
                self.quiet = rms <= QUIET * self.level + 1e-4

    @property
    def jb_start(self) -> int:
        return self.tracker.start_frame or 0

    def _play_one(self, adapt: bool = False) -> None:
        if adapt and self.delay is not None and self._adapt():
            return
        frame = self.jb.pop()
        if frame is None:
            self.stats.frames_concealed += 1
            self._write(self.decoder.conceal())
        else:
            self.stats.frames_decoded += 1
            self._write(self.decoder.decode([frame]))
        if self.delay is not None:
            self.stats.buffer_ms_played.append(self.buffer_frames * TICK * 1000)

    def _adapt(self) -> bool:
        """One step towards the target depth, if now is a good moment. True if it replaced this turn's play."""
        target, k, st = self.delay.target, self.jb.next, self.stats
        missing = k not in self.jb.slots
        if target > self.buffer_frames and (missing or self.quiet):
            self.buffer_frames += 1  # deeper: a stand-in now, frame k at the next turn
            st.stretched += 1
            self._write(self.decoder.conceal(), inserted=True)
            return True
        if target < self.buffer_frames - 1 and self.quiet and not missing and k + 1 in self.jb.slots:
            self.buffer_frames -= 1  # shallower: decode frame k (the decoder follows the stream), play k + 1 now
            st.shrunk += 1
            st.frames_decoded += 1
            skipped = len(self.decoder.decode([self.jb.pop()]))
            self.offset -= skipped
            st.edits.append((self.written, -skipped))
            return False
        return False

    def _play_due(self) -> None:
        if self.jb is None:
            return
        end = self.tracker.end_frame
        while True:
            k = self.jb.next
            if end is not None and k >= end:
                self.finished = True
                return
            if self.paced:
                due = time.monotonic() >= self._deadline(k) and (k <= self.on_time or end is not None)
            else:
                due = end is not None or self.jb.highest - self.buffer_frames >= k
            if not due:
                return
            self._play_one(adapt=end is None)

    # ---- main loop -------------------------------------------------------------------------------
    def run(self) -> Stats:
        """Receive until an end-of-stream packet has been played out, ``timeout`` s of silence, or Ctrl-C."""
        reader = threading.Thread(target=self._read, daemon=True, name="receiver-socket")
        reader.start()
        heard = time.monotonic()
        try:
            while not self.finished:
                wait = 0.05  # a datagram ends the wait at once
                jb = self.jb
                if self.paced and jb is not None and (jb.next <= self.on_time or self.tracker.end_frame is not None):
                    wait = min(wait, max(0.0, self._deadline(jb.next) - time.monotonic()))
                try:
                    item = self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait()
                except queue.Empty:
                    item = None
                if item is not None and self._handle(*item):
                    heard = time.monotonic()
                self._play_due()
                if not self.finished and time.monotonic() - heard > self.timeout:
                    self.stats.ended_by = "timeout"
                    break
            else:
                self.stats.ended_by = "end-of-stream"
        except KeyboardInterrupt:  # Ctrl-C ends a live call: keep what arrived
            self.stats.ended_by = "interrupt"
        finally:
            self.done.set()
            reader.join(1.0)
        self._finish()
        return self.stats

    def _finish(self) -> None:
        st = self.stats
        if self.jb is not None:
            last = self.tracker.end_frame if self.tracker.end_frame is not None else self.on_time + 1
            while self.jb.next < last:
                self._play_one()
            self._write(self.decoder.flush())
        self.tracker.finish()
        st.media_seconds = self.written / SAMPLE_RATE
        first, last = self.send_span
        paced_sender = (first is not None and last[1] > first[1]
                        and last[0] - first[0] >= 0.8 * (last[1] - first[1]) * TICK - 0.1)
        if not paced_sender:  # packets came in a burst: timing figures would describe the burst, not a network
            st.jitter_ms, st.delay_ms = None, []
        elif self.paced and self.origin is not None and self.e2e:  # (unpaced playout is not on a clock)
            start = self.jb_start * FRAME
            st.end_to_end_ms = float(np.mean([(w - self.origin - (start + n) / SAMPLE_RATE) * 1000
                                              for w, n in self.e2e]))
