"""Reference codecs run through their Debian command-line tools: Opus (opus-tools) and Codec2.

Bits are counted honestly: Opus as the sum of its audio packets (no Ogg pages, no header packets);
Codec2 as the size of its headerless bit file. Each returns audio of the input's length at 16 kHz.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import soundfile as sf
import soxr

from ..constants import SAMPLE_RATE
from ..errors import CodecError
from .base import CodecUnderTest, Coded, fit_length
from .ogg import opus_payload_bytes

OPUS_KBPS = (6.0, 8.0, 12.0, 16.0)
CODEC2_MODES = (3200, 1200)
CODEC2_RATE = 8000
CODEC2_PAD = 320  # 40 ms at 8 kHz: a whole number of frames in every mode used here


def opus_available() -> bool:
    return shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def codec2_available() -> bool:
    return shutil.which("c2enc") is not None and shutil.which("c2dec") is not None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise CodecError(f"{cmd[0]} failed ({msg[-1] if msg else f'exit {proc.returncode}'})")


def _int16(wav: np.ndarray) -> np.ndarray:
    return (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype(np.int16)


class OpusCodec(CodecUnderTest):
    """``opusenc --bitrate K`` (VBR, 20 ms frames) and ``opusdec --rate 16000``."""
    family = "opus"

    def run(self, wav: np.ndarray) -> Coded:
        with tempfile.TemporaryDirectory(prefix="audiocodec-opus-") as tmp:
            src, enc, dec = (os.path.join(tmp, n) for n in ("in.wav", "out.opus", "out.wav"))
            sf.write(src, _int16(wav), SAMPLE_RATE, subtype="PCM_16")
            t0 = time.perf_counter()
            _run(["opusenc", "--quiet", "--bitrate", f"{self.nominal_kbps:g}", src, enc])
            t1 = time.perf_counter()
            _run(["opusdec", "--quiet", "--rate", str(SAMPLE_RATE), enc, dec])
            t2 = time.perf_counter()
            with open(enc, "rb") as f:
                data = f.read()
            decoded, sr = sf.read(dec, dtype="float32")
        if decoded.ndim == 2:
            decoded = decoded.mean(1)
        if sr != SAMPLE_RATE:
            decoded = soxr.resample(decoded, sr, SAMPLE_RATE)
        return Coded(fit_length(decoded, len(wav)), opus_payload_bytes(data), len(data), t1 - t0, t2 - t1)


class Codec2Codec(CodecUnderTest):
    """Codec2 (an 8 kHz vocoder): resample to 8 kHz (soxr), ``c2enc MODE``, ``c2dec MODE``, back to 16 kHz.

    ``nominal_kbps`` is the mode / 1000; the payload is the headerless bit file (the input is padded to
    whole 40 ms frames, so the last partial frame is coded and counted too)."""
    family = "codec2"

    def __init__(self, mode: int):
        super().__init__(mode / 1000.0)
        self.mode = int(mode)

    def run(self, wav: np.ndarray) -> Coded:
        with tempfile.TemporaryDirectory(prefix="audiocodec-c2-") as tmp:
            src, enc, dec = (os.path.join(tmp, n) for n in ("in.raw", "out.bit", "out.raw"))
            narrow = soxr.resample(np.asarray(wav, dtype=np.float32), SAMPLE_RATE, CODEC2_RATE, quality="HQ")
            narrow = np.pad(narrow, (0, -len(narrow) % CODEC2_PAD))  # c2enc drops a partial last frame
            _int16(narrow).tofile(src)
            t0 = time.perf_counter()
            _run(["c2enc", str(self.mode), src, enc])
            t1 = time.perf_counter()
            _run(["c2dec", str(self.mode), enc, dec])
            t2 = time.perf_counter()
            size = os.path.getsize(enc)
            out = np.fromfile(dec, dtype=np.int16).astype(np.float32) / 32768.0
        decoded = soxr.resample(out, CODEC2_RATE, SAMPLE_RATE, quality="HQ")
        return Coded(fit_length(decoded, len(wav)), size, size, t1 - t0, t2 - t1)
