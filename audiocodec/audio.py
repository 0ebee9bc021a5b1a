"""Audio I/O: read any file libsndfile understands, mix to mono, resample to 16 kHz; write 16-bit wav.

Decoding of wav/flac/ogg goes through ``soundfile`` (libsndfile) and resampling through ``soxr``;
torchaudio is not used (its wheels need a CUDA build of torch).
"""
from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import soundfile as sf
import soxr

from .constants import SAMPLE_RATE
from .errors import CodecError

MAX_SECONDS = 4 * 3600  # refuse to load more than 4 hours in one go (use the chunked reader instead)


def _describe(src) -> str:
    return src if isinstance(src, str) else "input"


def info(src) -> sf._SoundFileInfo:
    """Header of an audio file, or CodecError if it is not one."""
    try:
        return sf.info(src)
    except Exception as exc:  # libsndfile raises several types
        raise CodecError(f"{_describe(src)}: not a readable audio file ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()
    return msg[-1] if msg else type(exc).__name__


def check_path(path: str, expected: str = "an audio file") -> None:
    """CodecError unless ``path`` is an existing, non-empty file."""
    if not os.path.exists(path):
        raise CodecError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CodecError(f"{path}: is a directory, expected {expected}")
    if os.path.getsize(path) == 0:
        raise CodecError(f"{path}: empty file")


def to_mono_16k(data: np.ndarray, sr: int) -> np.ndarray:
    """(samples,) or (samples, channels) float array at ``sr`` -> float32 mono at 16 kHz."""
    if data.ndim == 2:
        data = data.mean(axis=1)
    data = np.asarray(data, dtype=np.float32)
    if sr != SAMPLE_RATE:
        data = soxr.resample(data, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return data


def _validate(wav: np.ndarray, name: str) -> np.ndarray:
    if wav.size == 0:
        raise CodecError(f"{name}: contains no audio samples")
    if not np.all(np.isfinite(wav)):
        raise CodecError(f"{name}: contains NaN or infinite samples")
    return wav


def load(src) -> np.ndarray:
    """Read ``src`` (path or binary file object) as float32 mono 16 kHz in [-1, 1].

    Raises CodecError with a one-line message for missing, empty, unreadable, non-audio,
    over-long or NaN-filled input.
    """
    name = _describe(src)
    if isinstance(src, str):
        check_path(src)
    try:
        with sf.SoundFile(src) as f:
            if f.frames > MAX_SECONDS * f.samplerate:
                raise CodecError(f"{name}: longer than {MAX_SECONDS // 3600} h; split it first")
            data = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{name}: not a readable audio file ({_short(exc)})") from None
    return _validate(to_mono_16k(data, sr), name)


def load_bytes(data: bytes, name: str = "stdin") -> np.ndarray:
    if not data:
        raise CodecError(f"{name}: empty input")
    buf = io.BytesIO(data)
    buf.name = name
    try:
        return load(buf)
    except CodecError as exc:
        raise CodecError(str(exc).replace("input:", f"{name}:", 1)) from None


def iter_blocks(path: str, block_seconds: float = 10.0):
    """Yield float32 mono 16 kHz blocks of a long file with bounded memory.

    Resampling is streamed with soxr's ResampleStream so block edges leave no seams.
    """
    check_path(path)
    try:
        f = sf.SoundFile(path)
    except Exception as exc:
        raise CodecError(f"{path}: not a readable audio file ({_short(exc)})") from None
    with f:
        sr = f.samplerate
        rs = None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        n = max(1, int(block_seconds * sr))
        total = 0
        while True:
            try:
                block = f.read(n, dtype="float32", always_2d=True)
            except Exception as exc:
                raise CodecError(f"{path}: read error ({_short(exc)})") from None
            last = len(block) < n
            mono = block.mean(axis=1).astype(np.float32)
            if rs is not None:
                mono = rs.resample_chunk(mono, last=last)
            if mono.size:
                _validate(mono, path)
                total += mono.size
                yield mono
            if last:
                break
        if total == 0:
            raise CodecError(f"{path}: contains no audio samples")


def to_int16(wav: np.ndarray) -> np.ndarray:
    return (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def save(path: str, wav: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav atomically: a temp file in the same folder, then rename."""
    atomic_write(path, wav_bytes(wav, sr))


def wav_bytes(wav: np.ndarray, sr: int = SAMPLE_RATE) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, to_int16(wav), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CodecError(f"{path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CodecError(f"{path}: is a directory")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".audiocodec-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
