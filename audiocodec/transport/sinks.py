"""Where received audio goes: a wav file (written as it arrives, put in place at the end by ``output.Output``),
raw 16-bit PCM on a stream (``receive ... - | aplay -f S16_LE -r 16000``), or memory. Each has write / close /
abort."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from ..output import Output, to_int16, write_error
from ..constants import SAMPLE_RATE


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
    """16-bit wav written block by block into an ``output.Output`` (a temp part beside ``path``, or a pipe or
    character device such as /dev/null, written into); ``close`` puts it in place, ``abort`` leaves ``path`` as
    it was. Write errors are one-line CodecErrors."""

    def __init__(self, path: str):
        self.path, self.out = path, Output(path)
        self.file = sf.SoundFile(self.out.file, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16",
                                 format="WAV")

    def write(self, x: np.ndarray) -> None:
        if len(x):
            try:
                self.file.write(to_int16(x))
            except Exception as exc:
                raise write_error(self.path, exc) or exc from None

    def close(self) -> None:
        try:
            self.file.close()
        except Exception as exc:
            self.out.abort()
            raise write_error(self.path, exc) or exc from None
        self.out.commit()

    def abort(self) -> None:
        try:
            self.file.close()
        except Exception:  # (already failing: the part is removed all the same)
            pass
        self.out.abort()


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
