"""Where received audio goes: a wav file (written as it arrives, renamed into place at the end), raw 16-bit
PCM on a stream (``receive ... - | aplay -f S16_LE -r 16000``), or memory. Each has write / close / abort."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import soundfile as sf

from ..audio import to_int16
from ..constants import SAMPLE_RATE
from ..errors import CodecError


class ArraySink:
    def __init__(self):
        self.parts: list[np.ndarray] = []

    def write(self, x: np.ndarray) -> None:
        self.parts.append(np.asarray(x, dtype=np.float32))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.parts = []

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.float32)


class WavSink:
    """16-bit wav written block by block into a temp file beside ``path``; ``close`` renames it into place."""

    def __init__(self, path: str):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise CodecError(f"{path}: folder {folder} does not exist")
        if os.path.isdir(path):
            raise CodecError(f"{path}: is a directory")
        self.path = path
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=".audiocodec-", suffix=".part")
        os.close(fd)
        self.file = sf.SoundFile(self.tmp, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16", format="WAV")

    def write(self, x: np.ndarray) -> None:
        if len(x):
            self.file.write(to_int16(x))

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


class RawSink:
    """Signed 16-bit little-endian mono PCM at 16 kHz on a binary stream, flushed per block (live playback)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, x: np.ndarray) -> None:
        if len(x):
            self.stream.write(to_int16(x).astype("<i2").tobytes())
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()

    def abort(self) -> None:
        pass
