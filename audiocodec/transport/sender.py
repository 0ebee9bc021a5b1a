"""The sending side: audio -> 20 ms frames -> encoder -> packets -> UDP, paced like a live microphone.

The encoder (``stream.encoder.FrameEncoder``) has ``push(samples) -> frames`` and ``flush() -> frames``, ``tag``
(its model's packet tag) and ``low_band`` (a hybrid stream's ``LowBand``, else None). With a context model
(``bitstream.context.ContextModel``, ``Engine.context``) each packet's codes go context-coded when that is
smaller (``packets.build_audio``). It gets exactly one
320-sample frame per call (the last one zero-padded) and returns that frame, or, if it looks ahead (a stream
that sends the pitch), the frame before: nothing for the first, and ``flush()`` gives the last. No torch here.
"""
from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..constants import FRAME, SAMPLE_RATE
from . import packets
from .crypto import Sealer
from .packets import MAX_FRAMES

END_COPIES = 5  # the end-of-stream packet is sent this many times (20 ms apart when paced): it may be lost too


@dataclass
class SenderStats:
    session: int = 0
    frames: int = 0
    packets: int = 0
    bytes: int = 0
    samples: int = 0
    payload_bytes: int = 0     # the audio packets' payloads (codes and low band, without headers)
    coded_frames: int = 0      # the frames in them
    context_packets: int = 0   # audio packets whose codes went context-coded

    def line(self) -> str:
        secs = self.samples / SAMPLE_RATE
        kbps = self.bytes * 8 / secs / 1000 if secs else 0.0
        bits = self.payload_bytes * 8 / self.coded_frames if self.coded_frames else 0.0
        return (f"sent        {secs:.2f} s in {self.packets} packets ({self.frames} frames), session {self.session:08x}, "
                f"{kbps:.2f} kbps with packet headers; payload {bits:.1f} bits per frame, {self.context_packets} "
                f"packets context-coded")


def audio_frames(blocks: Iterable[np.ndarray]):
    """Audio blocks of any size -> 320-sample frames (the last one zero-padded), and the exact sample count."""
    pending = np.zeros(0, dtype=np.float32)
    total = 0
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).ravel()
        total += block.size
        pending = np.concatenate([pending, block]) if pending.size else block
        n = pending.size // FRAME
        for i in range(n):
            yield pending[i * FRAME:(i + 1) * FRAME], total
        pending = pending[n * FRAME:]
    if pending.size:
        yield np.concatenate([pending, np.zeros(FRAME - pending.size, dtype=np.float32)]), total


def send_stream(sock: socket.socket, dest: tuple, blocks: Iterable[np.ndarray], encoder, frames_per_packet: int = 1,
                session: int | None = None, paced: bool = True, stats: SenderStats | None = None,
                key: bytes | None = None, context=None) -> SenderStats:
    """Encode ``blocks`` frame by frame and send them to ``dest``; end with the end-of-stream packet.

    Paced: frame k is handed to the encoder at start + (k + 1) * 20 ms, when a microphone would have
    delivered it, so packets leave at the rate a live call produces them. Unpaced: as fast as it encodes.
    ``key``: seal every packet (version 3, docs/packets.md) under a fresh random session, numbered from 0
    by a 64-bit index that is never reused (so a given ``session`` is refused with a key). ``context``: the
    model's ``ContextModel``: each packet context-coded where that is smaller (None: all fixed-rate).
    """
    if not 1 <= frames_per_packet <= MAX_FRAMES:
        raise ValueError(f"frames per packet must be 1..{MAX_FRAMES}")
    if key is not None and session is not None:
        raise ValueError("a sealed stream picks its own random session (a nonce is never reused)")
    st = stats or SenderStats()
    st.session = secrets.randbits(32) if session is None else session
    sealer = Sealer(key, st.session) if key is not None else None
    seq, frame_index, coded, pending = 0, 0, 0, []  # seq: the 64-bit index (its low 16 bits go on the wire)
    start = time.monotonic()

    def emit(frames: list) -> None:
        """Send ``frames``, the last ones coded so far."""
        nonlocal seq
        data = packets.build_audio(seq, (coded - len(frames)) * FRAME, st.session, frames, int(time.time() * 1000),
                                   encoder.tag, encoder.low_band, sealer, seq, context)
        sock.sendto(data, dest)
        seq += 1
        st.packets += 1
        st.bytes += len(data)
        _, kind, *_, length, _ = packets.HEADER.unpack_from(data)
        st.payload_bytes += length
        st.coded_frames += len(frames)
        st.context_packets += kind in packets.CONTEXT_KINDS

    total, interrupted = 0, None
    try:
        for frame, total in audio_frames(blocks):
            if paced:
                wait = start + (frame_index + 1) * FRAME / SAMPLE_RATE - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            out = encoder.push(frame)
            if len(out) > 1 or (not out and frame_index > 0):
                raise RuntimeError(f"encoder returned {len(out)} frames for one frame of input")
            frame_index += 1
            pending += out
            coded += len(out)
            if len(pending) == frames_per_packet:
                emit(pending)
                pending = []
    except KeyboardInterrupt as exc:  # Ctrl-C hangs up: still tell the receiver where the stream ends
        interrupted, total = exc, min(total, frame_index * FRAME)
    last = encoder.flush()  # a look-ahead encoder still holds the last frame
    pending += last
    coded += len(last)
    if pending:  # fewer than frames_per_packet frames, plus at most the one flushed: one packet
        emit(pending)
    st.frames, st.samples = frame_index, total
    end = None  # sealed: one datagram sent END_COPIES times (a nonce seals one message only)
    for _ in range(END_COPIES):
        if end is None or sealer is None:
            end = packets.build_end(seq, frame_index * FRAME, st.session, total, int(time.time() * 1000),
                                    encoder.tag, sealer, seq)
        sock.sendto(end, dest)
        st.bytes += len(end)
        if paced:
            time.sleep(FRAME / SAMPLE_RATE)
    if interrupted is not None:
        raise interrupted
    return st
