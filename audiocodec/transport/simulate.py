"""Sender -> lossy relay -> receiver on 127.0.0.1, in one call (threads, real UDP sockets). No torch."""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .jitter import Stats
from .link import LinkStats, NetworkModel, Relay
from .receiver import Receiver
from .sender import SenderStats, send_stream

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
             paced: bool = False, buffer_ms: float = 80.0, timeout: float = 2.0, adaptive: bool = False) -> SimResult:
    """Send ``blocks`` through ``model``'s network to a receiver writing into ``sink``; all on loopback sockets."""
    rx, relay_sock, tx = udp_socket(), udp_socket(), udp_socket()
    relay = Relay(relay_sock, rx.getsockname(), model, paced=paced, tag=getattr(encoder, "model_tag", 0))
    sender_stats, errors = SenderStats(), []

    def send():
        try:
            send_stream(tx, relay_sock.getsockname(), blocks, encoder, frames_per_packet, paced=paced,
                        stats=sender_stats)
        except BaseException as exc:  # surfaced in the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=relay.run, daemon=True, name="relay"),
               threading.Thread(target=send, daemon=True, name="sender")]
    for t in threads:
        t.start()
    try:
        stats = Receiver(rx, decoder, sink, buffer_ms=buffer_ms, timeout=timeout, paced=paced,
                         adaptive=adaptive).run()
    finally:
        relay.stop()
        for t in threads:
            t.join(5.0)
        for s in (rx, relay_sock, tx):
            s.close()
    if errors:
        raise errors[0]
    return SimResult(stats, relay.stats, sender_stats)
