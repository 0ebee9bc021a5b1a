"""A bad network on demand: a seeded model of loss, delay, jitter and reordering, and a UDP relay using it.

The relay forwards datagrams from one socket to a destination. Paced (real time) it holds each datagram
until its arrival time on the wall clock. Unpaced (``--fast``) it runs on the stream's own clock: a
datagram "leaves" the sender when its last frame is complete (from the packet timestamp), and is forwarded
once no datagram sent later can still overtake it, so arrival *order* is the same as in real time.
No torch.
"""
from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..constants import FRAME, SAMPLE_RATE
from . import packets
from .packets import PacketError


@dataclass
class NetworkModel:
    """What happens to each datagram. Times in ms. Loss is random, or bursty (Gilbert-Elliott) with ``burst``."""
    loss: float = 0.0          # average fraction of datagrams lost
    burst: bool = False        # Gilbert-Elliott: losses come in bursts of mean length ``burst_len``
    burst_len: float = 3.0
    delay_ms: float = 40.0     # one-way delay ...
    jitter_ms: float = 0.0     # ... varying uniformly by +-jitter_ms per datagram (netem style; reorders)
    reorder: float = 0.0       # fraction held back an extra 20-40 ms, so that later datagrams overtake it
    duplicate: float = 0.0     # fraction delivered twice
    corrupt: float = 0.0       # fraction with one bit flipped
    seed: int = 0
    rng: np.random.Generator = field(init=False, repr=False)
    bad: bool = field(init=False, default=False)  # Gilbert-Elliott state

    def __post_init__(self):
        if not 0 <= self.loss < 1:
            raise ValueError("loss must be in [0, 1)")
        for name in ("reorder", "duplicate", "corrupt"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.burst_len < 1 or self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("burst length must be >= 1 and delays >= 0")
        self.rng = np.random.default_rng(self.seed)

    def lost(self) -> bool:
        if not self.burst:
            return bool(self.rng.random() < self.loss)
        # two states; the bad one loses everything. Leave it with p = 1/burst_len; enter it so that
        # the stationary share of bad (= the loss rate) is ``loss``: q / (q + p) = loss.
        p = 1.0 / self.burst_len
        q = self.loss * p / (1 - self.loss)
        self.bad = bool(self.rng.random() < (1 - p if self.bad else q))
        return self.bad

    def fate(self, data: bytes, sent: float) -> list[tuple[float, bytes]]:
        """(arrival time in s, bytes) for each copy that arrives: none if lost, two if duplicated."""
        if self.lost():
            return []
        out = []
        for _ in range(2 if self.rng.random() < self.duplicate else 1):
            d = self.delay_ms + self.rng.uniform(-self.jitter_ms, self.jitter_ms)
            if self.rng.random() < self.reorder:
                d += self.rng.uniform(20, 40)
            b = data
            if self.corrupt and self.rng.random() < self.corrupt and len(b):
                i = int(self.rng.integers(len(b)))
                b = b[:i] + bytes([b[i] ^ (1 << int(self.rng.integers(8)))]) + b[i + 1:]
            out.append((sent + max(0.0, d) / 1000, b))
        return out


@dataclass
class LinkStats:
    datagrams_in: int = 0
    dropped: int = 0
    duplicated: int = 0
    corrupted: int = 0
    forwarded: int = 0
    jitter_ms: float = 0.0     # RFC 3550 interarrival jitter of what the relay delivers (on its own clock)

    def line(self) -> str:
        pct = 100 * self.dropped / self.datagrams_in if self.datagrams_in else 0
        return (f"link        {self.datagrams_in} datagrams in, dropped {self.dropped} ({pct:.1f}%), "
                f"duplicated {self.duplicated}, corrupted {self.corrupted}, forwarded {self.forwarded}, "
                f"jitter {self.jitter_ms:.1f} ms")


class Relay:
    """Forward datagrams arriving on ``sock`` to ``dest`` through ``model``. Run ``run`` in a thread; ``stop`` ends it."""

    def __init__(self, sock: socket.socket, dest: tuple, model: NetworkModel, paced: bool = True, tag: int = 0,
                 context=None):
        self.sock, self.dest, self.model, self.paced = sock, dest, model, paced
        self.tag, self.context = tag, context  # the stream's (unpaced, the relay reads packets' timestamps)
        self.stats = LinkStats()
        self.heap: list = []
        self.order = itertools.count()
        self.stopped = threading.Event()
        self.clock = 0.0       # unpaced: the stream clock, in s
        self.ts_ref: int | None = None
        self.prev_transit: float | None = None

    def stop(self) -> None:
        self.stopped.set()

    def _media_time(self, data: bytes) -> tuple[float, bool]:
        """(time the datagram left the sender on the stream clock, is it end-of-stream)."""
        try:
            kind, timestamp, frames = packets.peek(data, self.tag, self.context)
        except PacketError:
            return self.clock, False
        ts = packets.unwrap(timestamp, self.ts_ref, 32)
        self.ts_ref = ts
        return (ts + frames * FRAME) / SAMPLE_RATE, kind == packets.END

    def _arrive(self, data: bytes, now: float) -> bool:
        self.stats.datagrams_in += 1
        end = False
        if not self.paced:
            t, end = self._media_time(data)
            self.clock = max(self.clock, t)
            now = self.clock
        fates = self.model.fate(data, now)
        self.stats.dropped += not fates
        self.stats.duplicated += len(fates) > 1
        self.stats.corrupted += sum(b != data for _, b in fates)
        for arrival, b in fates:
            heapq.heappush(self.heap, (arrival + (1e9 if end else 0), next(self.order), b, arrival - now))
        return end

    def _release(self, now: float) -> None:
        while self.heap and self.heap[0][0] <= now:
            _, _, b, transit = heapq.heappop(self.heap)
            if self.prev_transit is not None:  # RFC 3550 A.8, as a receiver on an idle machine would measure it
                self.stats.jitter_ms += (abs(transit - self.prev_transit) * 1000 - self.stats.jitter_ms) / 16
            self.prev_transit = transit
            try:
                self.sock.sendto(b, self.dest)
                self.stats.forwarded += 1
            except OSError:
                pass  # a real network does not report delivery either

    def run(self) -> LinkStats:
        self.sock.settimeout(0.02)
        while not self.stopped.is_set():
            now = time.monotonic()
            if self.paced and self.heap:
                self.sock.settimeout(min(0.02, max(0.0005, self.heap[0][0] - now)))
            try:
                data, _ = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                data = None
            except OSError:
                if self.stopped.is_set():
                    break
                data = None
            end = False
            if data is not None:
                end = self._arrive(data, time.monotonic())
            # unpaced: nothing sent later can arrive before ``clock``; after an end-of-stream, flush all
            self._release(float("inf") if end else (time.monotonic() if self.paced else self.clock))
        return self.stats
