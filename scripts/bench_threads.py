"""Threads under load: torch's default number of threads against one (``audiocodec.runtime.use_threads``), on a
machine that is busy with other work.

    python scripts/bench_threads.py [--busy 2] [--seconds 60] [--live-seconds 4] [--kbps 6]

Starts ``--busy`` processes that spin (``while True: pass``), then, each in a fresh process and once with
torch's default threads (one per core) and once with one thread:

- file: ``compress`` + ``decompress`` of a ``--seconds`` clip (samples/ repeated), wall and CPU time;
- live: a paced ``send`` of a ``--live-seconds`` clip over loopback UDP to a receiver in another process
  (``transport.sender``/``receiver``, as ``audiocodec send``/``receive`` run them, both on the same threads):
  the sender hands frame k to the encoder when a microphone would deliver it (and stops after ``GIVE_UP``
  times the clip's length, when it has fallen that far behind). Its lateness is how long after that moment frame k was
  encoded (over 20 ms and growing: it falls behind real time); the receiver reports the RFC 3550
  interarrival jitter, the packets that came too late to play and the frames it concealed.

Prints a table. Both runs keep freed memory for reuse (``runtime.keep_freed_memory``), so only the threads
differ. The busy processes are stopped at the end (also on Ctrl-C).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
GIVE_UP = 3  # a live sender stops after this many times the clip's length (a slow one has fallen far behind)


def clip(seconds: float) -> np.ndarray:
    """The two sample recordings, repeated to ``seconds``."""
    from audiocodec.audio import load

    wav = np.concatenate([load(os.path.join(SAMPLES, f"speech_{s}.wav")) for s in ("female", "male")])
    n = int(seconds * 16000)
    return np.tile(wav, -(-n // len(wav)))[:n].astype(np.float32)


def cpu_seconds() -> float:
    """CPU time of this process, all its threads, user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def file_run(a) -> dict:
    """compress + decompress of the clip: wall and CPU seconds per second of audio."""
    from audiocodec.compress import compress, decompress
    from audiocodec.stream.engine import load_engine

    engine, wav = load_engine(), clip(a.seconds)
    decompress(compress(wav[:16000], a.kbps, engine), engine)  # warm-up
    cpu, wall = cpu_seconds(), time.perf_counter()
    decompress(compress(wav, a.kbps, engine), engine)
    return {"wall_rtf": (time.perf_counter() - wall) / a.seconds, "cpu_rtf": (cpu_seconds() - cpu) / a.seconds}


class TimedEncoder:
    """A ``FrameEncoder`` that notes when each ``push`` began and ended (time.monotonic)."""

    def __init__(self, encoder):
        self.encoder, self.starts, self.ends = encoder, [], []

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def push(self, samples):
        self.starts.append(time.monotonic())
        out = self.encoder.push(samples)
        self.ends.append(time.monotonic())
        return out


def warm(codec, kbps: float) -> None:
    """Encode and decode a few frames once, so that first-call costs do not count as lateness."""
    from audiocodec.stream.decoder import FrameDecoder
    from audiocodec.stream.encoder import FrameEncoder
    from audiocodec.stream.modes import mode

    enc, dec = FrameEncoder(codec, mode(kbps)), FrameDecoder(codec)
    for _ in range(5):
        frames = enc.push(np.zeros(320, dtype=np.float32))
        if frames:
            dec.decode(frames)


def send_run(a) -> dict:
    """A paced send to the receiver at ``--port``: the sender's lateness and its encode time per frame."""
    import socket

    from audiocodec.stream.encoder import FrameEncoder
    from audiocodec.stream.engine import load_engine
    from audiocodec.stream.modes import mode
    from audiocodec.transport.sender import send_stream

    codec = load_engine().codec
    warm(codec, a.kbps)
    encoder = TimedEncoder(FrameEncoder(codec, mode(a.kbps)))
    wav, limit = clip(a.live_seconds), time.monotonic() + GIVE_UP * a.live_seconds

    def frames():  # the clip a frame at a time, until the time limit
        for i in range(0, len(wav), 320):
            if time.monotonic() > limit:
                return
            yield wav[i:i + 320]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        send_stream(sock, ("127.0.0.1", a.port), frames(), encoder, paced=True)
    ends, starts = np.array(encoder.ends), np.array(encoder.starts)
    late_ms = 1000 * (ends - (starts[0] + 0.02 * np.arange(len(ends))))  # after a microphone delivered frame k
    return {"late_p95_ms": float(np.percentile(late_ms, 95)), "late_max_ms": float(late_ms.max()),
            "encode_ms": float(1000 * np.mean(ends - starts)), "sent": len(ends), "clip": -(-len(wav) // 320)}


def receive_run(a) -> dict:
    """Bind a loopback port, print it, receive one stream: jitter, late packets, concealed frames."""
    from audiocodec.stream.decoder import FrameDecoder
    from audiocodec.stream.engine import load_engine
    from audiocodec.transport.receiver import Receiver
    from audiocodec.transport.simulate import udp_socket
    from audiocodec.transport.sinks import ArraySink

    codec = load_engine().codec
    warm(codec, a.kbps)
    sock = udp_socket()
    print(sock.getsockname()[1], flush=True)
    st = Receiver(sock, FrameDecoder(codec), ArraySink(), timeout=60.0).run()  # (the sender loads its model)
    sock.close()
    return {"jitter_ms": st.jitter_ms, "late_packets": st.late, "concealed": st.frames_concealed,
            "frames": st.frames_decoded + st.frames_concealed}


def worker(a) -> None:
    """One measurement in this process: torch's default threads, or ``--threads``."""
    import torch

    from audiocodec.runtime import keep_freed_memory, use_threads

    keep_freed_memory()
    if a.threads:
        use_threads(a.threads)
    out = {"file": file_run, "send": send_run, "receive": receive_run}[a.worker](a)
    print(json.dumps({"threads": torch.get_num_threads(), **out}), flush=True)


def command(a, kind: str, threads: int, port: int = 0) -> list[str]:
    """The command line of a ``worker`` (threads 0: torch's default)."""
    return [sys.executable, __file__, "--worker", kind, "--threads", str(threads), "--seconds", str(a.seconds),
            "--live-seconds", str(a.live_seconds), "--kbps", str(a.kbps), "--port", str(port)]


ENV = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}  # torch's default


def file_measure(a, threads: int) -> dict:
    done = subprocess.run(command(a, "file", threads), capture_output=True, text=True, env=ENV, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def live_measure(a, threads: int) -> dict:
    """A receiver process, then a sender process to it, both on ``threads``; their results merged."""
    rx = subprocess.Popen(command(a, "receive", threads), stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        port = int(rx.stdout.readline())
        done = subprocess.run(command(a, "send", threads, port), capture_output=True, text=True, env=ENV,
                              check=True)
        received = json.loads(rx.stdout.readline())
    finally:
        rx.kill()
        rx.wait()
    return {**json.loads(done.stdout.splitlines()[-1]), **received}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--busy", type=int, default=2, help="spinning processes to load the machine with")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the file clip")
    p.add_argument("--live-seconds", type=float, default=4.0, help="length of the live clip")
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--worker", choices=("file", "send", "receive"), help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(a.busy)]
    try:
        time.sleep(0.5)
        runs = {("file", t): file_measure(a, t) for t in (0, 1)} | {("live", t): live_measure(a, t) for t in (0, 1)}
        load = os.getloadavg()[0]
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print_tables(a, runs, load)


def print_tables(a, runs: dict, load: float) -> None:
    """The two tables: ``runs[kind, threads]`` from ``file_measure`` and ``live_measure``."""
    label = {0: "torch default", 1: "use_threads(1)"}
    print(f"{os.cpu_count()} cores, {a.busy} busy processes, load average {load:.2f}, {a.kbps:g} kbps\n")
    print(f"| file: compress + decompress of {a.seconds:g} s | threads | wall RTF | × real time | CPU RTF |")
    print("|---|---:|---:|---:|---:|")
    for t in (0, 1):
        r = runs["file", t]
        print(f"| {label[t]} | {r['threads']} | {r['wall_rtf']:.3f} | {1 / r['wall_rtf']:.0f}× | {r['cpu_rtf']:.3f} |")
    print(f"\n| live: paced send of {a.live_seconds:g} s over loopback | threads | encode ms per frame | frames sent "
          "| sender late p95 / max ms | receiver jitter ms | late packets | concealed frames |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in (0, 1):
        r = runs["live", t]
        jitter = "-" if r["jitter_ms"] is None else f"{r['jitter_ms']:.2f}"  # None: packets came in a burst
        print(f"| {label[t]} | {r['threads']} | {r['encode_ms']:.2f} | {r['sent']} of {r['clip']} | "
              f"{r['late_p95_ms']:.1f} / {r['late_max_ms']:.1f} | {jitter} | {r['late_packets']} | "
              f"{r['concealed']} of {r['frames']} |")

if __name__ == "__main__":
    main()
