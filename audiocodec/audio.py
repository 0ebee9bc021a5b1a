"""Audio in: read any file libsndfile understands (a path, a file object, stdin, raw PCM), mix to mono,
resample to 16 kHz, whole or in blocks of bounded memory. Writing is ``output.py``'s job.

Decoding of wav/flac/ogg goes through ``soundfile`` (libsndfile) and resampling through ``soxr``;
torchaudio is not used (its wheels need a CUDA build of torch).
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile

import numpy as np
import soundfile as sf
import soxr

from .constants import SAMPLE_RATE
from .errors import CodecError
from .output import PART_PREFIX

MAX_SECONDS = 4 * 3600  # refuse to load more than 4 hours in one go (use the chunked reader instead)
MAX_PEAK = 32.0         # float input beyond this (30 dB over full scale) is refused as mis-scaled


def _describe(src) -> str:
    return src if isinstance(src, str) else "input"


def info(src, name: str | None = None) -> sf._SoundFileInfo:
    """Header of an audio file (a path, or a seekable binary file, left where it was), or CodecError if it is
    not one."""
    at = None if isinstance(src, str) else src.tell()
    try:
        return sf.info(src)
    except Exception as exc:  # libsndfile raises several types
        raise CodecError(f"{name or _describe(src)}: not a readable audio file ({_short(exc)})") from None
    finally:
        if at is not None:
            src.seek(at)


def _short(exc: Exception) -> str:
    """The last line of an exception's message, without libsndfile's "Error opening <file object>: " prefix."""
    msg = str(exc).strip().splitlines()
    if not msg:
        return type(exc).__name__
    return msg[-1].rpartition(": ")[2] if msg[-1].startswith("Error opening ") else msg[-1]


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
    """Refuse empty, non-finite or grossly mis-scaled input; anything else passes untouched (float input a
    little over full scale included: the codec takes it and the output is clipped)."""
    if wav.size == 0:
        raise CodecError(f"{name}: contains no audio samples")
    if not np.all(np.isfinite(wav)):
        raise CodecError(f"{name}: contains NaN or infinite samples")
    peak = float(np.max(np.abs(wav)))
    if peak > MAX_PEAK:
        raise CodecError(f"{name}: samples reach {peak:.3g}, full scale is 1.0; the file is mis-scaled "
                         f"(normalise it first, e.g. sox --norm)")
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


def iter_blocks(src, block_seconds: float = 10.0, max_seconds: float | None = None, name: str | None = None):
    """Float32 mono 16 kHz blocks of a file (a path, or a seekable binary file such as ``spool``'s) with bounded
    memory. The header is checked now (CodecError if it is not audio, or longer than ``max_seconds``: what an
    .acdc file holds); the samples are read as the returned iterator is consumed.

    Resampling is streamed with soxr's ResampleStream so block edges leave no seams.
    """
    name = name or _describe(src)
    if isinstance(src, str):
        check_path(src)
    try:
        f = sf.SoundFile(src)
    except Exception as exc:
        raise CodecError(f"{name}: not a readable audio file ({_short(exc)})") from None
    if max_seconds is not None and f.frames > max_seconds * f.samplerate:
        f.close()
        raise CodecError(f"{name}: {f.frames / f.samplerate / 3600:.1f} h, longer than the {max_seconds / 3600:g} h "
                         f"an .acdc file holds; split it first")
    return _file_blocks(f, name, max(1, int(block_seconds * f.samplerate)))


def _file_blocks(f: sf.SoundFile, name: str, n: int):
    with f:
        def read():
            try:
                block = f.read(n, dtype="float32", always_2d=True)
            except Exception as exc:
                raise CodecError(f"{name}: read error ({_short(exc)})") from None
            return block.mean(axis=1).astype(np.float32), len(block) < n
        yield from _mono_16k(read, f.samplerate, name)


def _mono_16k(read, sr: int, name: str):
    """Blocks from ``read() -> (float32 mono block at sr, last)``, resampled to 16 kHz as a stream and checked."""
    rs = None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    total, last = 0, False
    while not last:
        mono, last = read()
        if rs is not None:
            mono = rs.resample_chunk(mono, last=last)
        if mono.size:
            _validate(mono, name)
            total += mono.size
            yield mono
    if total == 0:
        raise CodecError(f"{name}: contains no audio samples")


def spool(stream, name: str = "stdin"):
    """Copy a non-seekable stream (stdin) into an unnamed temp file, 1 MB at a time, and return it at offset 0:
    libsndfile needs to seek, and memory stays bounded however long the input is."""
    tmp = tempfile.TemporaryFile(prefix=PART_PREFIX)
    shutil.copyfileobj(stream, tmp, 1 << 20)
    if tmp.tell() == 0:
        tmp.close()
        raise CodecError(f"{name}: empty input")
    tmp.seek(0)
    return tmp


RAW_FORMATS = {"s16le": ("<i2", 32768.0), "f32le": ("<f4", 1.0)}  # --raw-format: numpy dtype, full scale


def iter_raw(stream, rate: int = SAMPLE_RATE, channels: int = 1, fmt: str = "s16le", block_seconds: float = 1.0,
             name: str = "stdin"):
    """Headerless PCM (``fmt`` in RAW_FORMATS, interleaved ``channels``) at ``rate`` from a binary stream, read as
    it comes -> float32 mono 16 kHz blocks. Arguments are checked now (CodecError), the stream as it is read."""
    if fmt not in RAW_FORMATS:
        raise CodecError(f"--raw-format must be one of {', '.join(RAW_FORMATS)}, not {fmt}")
    if not 1000 <= rate <= 384000 or not 1 <= channels <= 64:
        raise CodecError(f"--raw-rate must be 1000..384000 Hz and --raw-channels 1..64, not {rate} Hz, {channels}")
    dtype, scale = RAW_FORMATS[fmt]
    width = np.dtype(dtype).itemsize * channels
    size = max(1, int(block_seconds * rate)) * width
    carry = b""

    def read():
        nonlocal carry
        try:
            data = stream.read(size - len(carry))
        except OSError as exc:
            raise CodecError(f"{name}: read error ({exc.strerror or exc})") from None
        data, last = carry + data, not data
        cut = len(data) - len(data) % width
        data, carry = data[:cut], data[cut:]
        block = np.frombuffer(data, dtype=dtype).reshape(-1, channels).astype(np.float32)
        return block.mean(axis=1) / np.float32(scale), last

    return _mono_16k(read, rate, name)
