"""Where the encode + decode time goes, part by part, on ONE CPU thread.

    python scripts/speed.py [--model W] [--kbps 6] [--repeats 7] [--backend onnx] [audio file]

Times each stage of the codec on a clip (default: samples/speech_male.wav, repeated to 10 s) with the
offline API (one pass over the whole clip), and the file path that ``audiocodec compress``/``decompress``
take (the streaming encoder and decoder, range coding, the container; at 6 or 12 kbps also the hybrid
mode's, and its low band alone). Each part runs ``--repeats`` times; it prints the best CPU time of the
process (user + system, what a busy host inflates least) and the median wall time, in ms per second of
audio, and the real-time factor (RTF: seconds of work per second of audio; 1 / RTF = times faster than real
time), with the load average. Wall time on a loaded host is longer: stop other jobs first (``kill -STOP`` a
training run, ``kill -CONT`` it after). ``--backend onnx``: the decoder backbone on ONNX Runtime
(``audiocodec/model/onnx_backend.py``).
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import torch

from audiocodec.audio import load
from audiocodec.compress import compress, decompress
from audiocodec.constants import SAMPLE_RATE
from audiocodec.model.codec import BACKENDS
from audiocodec.runtime import use_threads
from audiocodec.stream.engine import load_engine
from audiocodec.stream.modes import bitrates, mode

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "samples", "speech_male.wav")


def low_band_round_trip(wav: np.ndarray, kbps: float) -> np.ndarray:
    """A hybrid mode's waveform layer on its own: encode, decode, and put it in place."""
    layer = mode(kbps, hybrid=True).layer()
    return layer.replace(wav, layer.sent(wav))


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system: the kernel's page faults count too)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, repeats: int) -> tuple[float, float]:
    """(best CPU seconds, median wall seconds) of ``repeats`` calls, after one warm-up call (first calls
    allocate and pick kernels)."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c, w = cpu_seconds(), time.perf_counter()
        fn()
        cpu.append(cpu_seconds() - c)
        wall.append(time.perf_counter() - w)
    return min(cpu), float(np.median(wall))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="?", default=SAMPLE)
    p.add_argument("--model", default=None, help="weights file (default: the shipped model)")
    p.add_argument("--kbps", type=float, default=6.0)
    p.add_argument("--seconds", type=float, default=10.0, help="the clip is repeated or cut to this length")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--backend", choices=BACKENDS, default="torch", help="what runs the decoder backbone")
    a = p.parse_args()
    use_threads(1)

    engine = load_engine(a.model)
    engine.codec.use_backend(a.backend)
    m = mode(a.kbps)
    codec, n_q = engine.codec, m.rows
    wav = load(a.audio)
    n = int(a.seconds * SAMPLE_RATE)
    wav = np.tile(wav, -(-n // len(wav)))[:n].astype(np.float32)
    x = torch.from_numpy(wav)

    with torch.no_grad():
        batch = codec.as_batch(x)
        z, late = codec.encoder.parts(batch)
        stages = n_q - m.sends_pitch(codec)  # a stream that sends the pitch gives it a row
        codes = codec.quantizer.encode(z, stages, late)
        z_q = codec.quantizer.decode(codes)
        feats = codec.decoder(z_q)
        parts = {
            "encoder (SEANet at 16 kHz + spectral branch)": lambda: codec.encoder.parts(batch),
            "RVQ encode": lambda: codec.quantizer.encode(z, stages, late),
            "RVQ decode": lambda: codec.quantizer.decode(codes),
            "decoder backbone (ConvNeXt at 50 Hz)": lambda: codec.decoder(z_q),
            "pitch source + iSTFT head + overlap-add": lambda: codec.synthesize(feats),
        }
        if m.sends_pitch(codec):
            parts["pitch tracker (sender, model/pitch.py)"] = lambda: codec.pitch_symbols(batch)
        data = compress(wav, a.kbps, engine)
        paths = {
            "offline encode + decode (Codec.encode / .decode)": lambda: codec.decode(codec.encode(x, n_q)),
            "file path: compress + decompress": lambda: decompress(compress(wav, a.kbps, engine), engine),
            "  compress": lambda: compress(wav, a.kbps, engine),
            "  decompress": lambda: decompress(data, engine),
        }
        if a.kbps in bitrates(hybrid=True):  # the same bitrate as a hybrid mode: a lower neural one + the low band
            hybrid = compress(wav, a.kbps, engine, hybrid=True)
            paths[f"file path, {a.kbps:g} kbps --hybrid: compress + decompress"] = lambda: decompress(
                compress(wav, a.kbps, engine, hybrid=True), engine)
            paths["  the low band alone: MDCT + range coding, both ways"] = lambda: low_band_round_trip(wav, a.kbps)
            paths["  decompress --hybrid"] = lambda: decompress(hybrid, engine)
        print(f"model {codec.model_id}, {a.kbps:g} kbps, {a.seconds:g} s of {os.path.basename(a.audio)}, 1 thread, "
              f"backend {a.backend}, best CPU / median wall of {a.repeats}, load average {os.getloadavg()[0]:.2f}\n")
        print("| part | CPU ms per s of audio | share | wall ms per s |\n|---|---:|---:|---:|")
        times = {k: timed(f, a.repeats) for k, f in parts.items()}
        total = sum(cpu for cpu, _ in times.values())
        for k, (cpu, wall) in times.items():
            print(f"| {k} | {1000 * cpu / a.seconds:.1f} | {100 * cpu / total:.0f} % | {1000 * wall / a.seconds:.1f} |")
        print(f"| sum | {1000 * total / a.seconds:.1f} | | |\n")
        print("| path | RTF (CPU) | × real time (CPU) | × real time (wall) |\n|---|---:|---:|---:|")
        for k, f in paths.items():
            cpu, wall = (t / a.seconds for t in timed(f, a.repeats))
            print(f"| {k} | {cpu:.4f} | {1 / cpu:.0f}× | {1 / wall:.0f}× |")
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
