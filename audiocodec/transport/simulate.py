"""Sender -> lossy relay -> receiver on 127.0.0.1, in one call (threads, real UDP sockets). The encoder and
decoder come from the caller (``stream.encoder``/``stream.decoder``). No torch."""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .jitter import Stats, stream_aligned
from .link import LinkStats, NetworkModel, Relay
from .receiver import Receiver
from .sender import SenderStats, send_stream
from .sinks import ArraySink

LOOPBACK = "127.0.0.1"


def udp_socket(port: int = 0, host: str = LOOPBACK) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # best effort: room for an unpaced burst
    except OSError:
        pass
    s.bind((host, port))
    return s


@dataclass
class SimResult:
    stats: Stats
    link: LinkStats
    sender: SenderStats


def simulate(blocks: Iterable[np.ndarray], encoder, decoder, sink, model: NetworkModel, frames_per_packet: int = 1,
             paced: bool = False, buffer_ms: float = 80.0, timeout: float = 2.0, adaptive: bool = False,
             key: bytes | None = None, context=None) -> SimResult:
    """Send ``blocks`` through ``model``'s network to a receiver writing into ``sink``; all on loopback sockets.
    ``key``: the stream is sealed (both ends hold it; the relay does not); ``context``: the model's
    ``ContextModel`` (both ends): packets context-coded where that is smaller (None: all fixed-rate)."""
    rx, relay_sock, tx = udp_socket(), udp_socket(), udp_socket()
    relay = Relay(relay_sock, rx.getsockname(), model, paced=paced, tag=encoder.tag, context=context)
    sender_stats, errors = SenderStats(), []

    def send():
        try:
            send_stream(tx, relay_sock.getsockname(), blocks, encoder, frames_per_packet, paced=paced,
                        stats=sender_stats, key=key, context=context)
        except BaseException as exc:  # surfaced in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=relay.run, daemon=True, name="relay"),
               threading.Thread(target=send, daemon=True, name="sender")]
    for t in threads:
        t.start()
    try:
        stats = Receiver(rx, decoder, sink, buffer_ms=buffer_ms, timeout=timeout, paced=paced,
                         adaptive=adaptive, key=key, context=context).run()
    finally:
        relay.stop()
        for t in threads:
            t.join(5.0)
        for s in (rx, relay_sock, tx):
            s.close()
    if errors:
        raise errors[0]
    return SimResult(stats, relay.stats, sender_stats)


def run_simulation(wav: np.ndarray, encoder, decoder, model: NetworkModel, frames_per_packet: int = 1,
                   buffer_ms: float = 80.0, paced: bool = False, sink=None, timeout: float = 2.0,
                   adaptive: bool = False, key: bytes | None = None, context=None) -> tuple[np.ndarray, SimResult]:
    """One clip through sender -> relay -> receiver on loopback. Returns (decoded audio, SimResult). With
    ``adaptive`` the audio returned is put back on the stream's clock (``stream_aligned``) so that it can be
    compared with the input; ``sink``, if given, also gets it as played; ``key``: seal the stream;
    ``context``: context-code it (``simulate``)."""
    out = ArraySink()
    result = simulate([wav], encoder, decoder, out if sink is None else _Tee(sink, out), model,
                      frames_per_packet=frames_per_packet, paced=paced, buffer_ms=buffer_ms, timeout=timeout,
                      adaptive=adaptive, key=key, context=context)
    return stream_aligned(out.audio, result.stats.edits), result


class _Tee:
    def __init__(self, *sinks):
        self.sinks = sinks

    def write(self, x):
        for s in self.sinks:
            s.write(x)

    def close(self):
        for s in self.sinks:
            s.close()

    def abort(self):
        for s in self.sinks:
            s.abort()

