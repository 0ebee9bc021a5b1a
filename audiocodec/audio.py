"""Audio I/O: read any file libsndfile understands, mix to mono, resample to 16 kHz; write output files.

Decoding of wav/flac/ogg goes through ``soundfile`` (libsndfile) and resampling through ``soxr``;
torchaudio is not used (its wheels need a CUDA build of torch).

Outputs (``Output``, ``atomic_write``, ``save``) are written the way ``cp`` would leave them, but atomically:
into a temp part beside the target, then renamed over it, with mode 0666 less the umask (or the mode of the
file replaced). An existing character device or FIFO (``/dev/null``, a pipe) is written into, never
replaced; block devices and sockets are refused. Parts are removed on errors and on SIGTERM, and parts
that earlier runs left behind (SIGKILL, power loss) are removed after an hour. Every OS error becomes one
line (a CodecError).
"""
from __future__ import annotations

import glob
import io
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import traceback

import numpy as np
import soundfile as sf
import soxr

from .constants import SAMPLE_RATE
from .errors import CodecError

MAX_SECONDS = 4 * 3600  # refuse to load more than 4 hours in one go (use the chunked reader instead)
MAX_PEAK = 32.0         # float input beyond this (30 dB over full scale) is refused as mis-scaled
STALE_PART_SECONDS = 3600  # a temp part this old in an output folder was left by a killed run
PART_PREFIX, PART_SUFFIX = ".audiocodec-", ".part"


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


OUTPUT_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


def output_format(path: str) -> tuple[str, str]:
    """soundfile's (format, subtype) for an output path, by its extension; WAV for stdout (-) and for an existing
    device or pipe (/dev/null, a FIFO); CodecError for any other extension."""
    if path == "-" or (os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path)):
        return OUTPUT_FORMATS[".wav"]
    ext = os.path.splitext(path)[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise CodecError(f"{path}: cannot write {ext or 'a name without an extension'}; "
                         f"name the output .wav, .flac or .ogg (Ogg Vorbis)")
    return OUTPUT_FORMATS[ext]


def write_audio(file, blocks, rate: int = SAMPLE_RATE, fmt: tuple[str, str] = OUTPUT_FORMATS[".wav"]) -> None:
    """Write float32 mono 16 kHz ``blocks`` into a seekable binary ``file`` as ``fmt`` (``output_format``) at
    ``rate``, resampled as a stream (soxr). PCM is 16-bit, rounded and clipped as ``to_int16``."""
    rs = None if rate == SAMPLE_RATE else soxr.ResampleStream(SAMPLE_RATE, rate, 1, dtype="float32", quality="HQ")
    kind, subtype = fmt
    with sf.SoundFile(file, "w", samplerate=rate, channels=1, format=kind, subtype=subtype) as out:
        def put(x: np.ndarray) -> None:
            out.write(to_int16(x) if subtype == "PCM_16" else np.clip(x, -1.0, 1.0))

        for block in blocks:
            put(block if rs is None else rs.resample_chunk(block))
        if rs is not None:
            put(rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True))


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
    """Write ``data`` to ``path`` so that readers never see a half-written file (see ``Output``)."""
    with Output(path) as out:
        out.file.write(data)


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name the same existing file (``compress a.wav a.wav -f`` is refused)."""
    if "-" in (a, b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_error(path: str, exc: BaseException) -> CodecError | None:
    """A one-line CodecError for an error while writing ``path``: an OSError, or one of soundfile's (its bare
    AssertionError when the disk is full, a LibsndfileError); None for anything else (a bug)."""
    if isinstance(exc, OSError):
        return CodecError(f"{path}: cannot write ({exc.strerror or exc})")
    if isinstance(exc, (AssertionError, RuntimeError)) and soundfile_failed(exc):
        return CodecError(f"{path}: cannot write (write failed: disk full or I/O error)")
    return None


def soundfile_failed(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside soundfile (its bare AssertionError on a short write, say)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and os.path.basename(frames[-1].filename) == "soundfile.py"


class _Parts:
    """Temp parts being written, removed if SIGTERM comes first. One per process (``PARTS``): a signal
    handler can reach nothing else. The handler is installed only where SIGTERM has its default action."""

    def __init__(self):
        self.paths: set[str] = set()
        self.lock = threading.Lock()

    def add(self, path: str) -> None:
        with self.lock:
            self.paths.add(path)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def discard(self, path: str) -> None:
        with self.lock:
            self.paths.discard(path)

    def _on_sigterm(self, signum, frame) -> None:
        for path in list(self.paths):
            try:
                os.unlink(path)
            except OSError:
                pass
        raise SystemExit(128 + signum)


PARTS = _Parts()


def remove_stale_parts(folder: str, age: float = STALE_PART_SECONDS) -> int:
    """Remove this user's temp parts older than ``age`` seconds in ``folder``; returns how many."""
    removed, now = 0, time.time()
    for path in glob.glob(os.path.join(glob.escape(folder), PART_PREFIX + "*" + PART_SUFFIX)):
        try:
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and now - st.st_mtime > age \
                    and path not in PARTS.paths:
                os.unlink(path)
                removed += 1
        except OSError:
            pass
    return removed


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Output:
    """An output file being written: write to ``file`` (binary, seekable), then ``commit`` (or leave the
    ``with`` block normally) to put it at ``path``; ``abort`` (or an exception) leaves ``path`` untouched.

    A regular or new ``path`` gets a temp part beside it that is renamed over it, with the mode ``cp`` would
    give (the replaced file's, else 0666 less the umask); a symlink is followed. An existing character
    device or FIFO is written into at ``commit`` (from an unnamed temp file, since wav writers seek), never
    replaced. Block devices, sockets and folders are refused. Errors are one-line CodecErrors."""

    def __init__(self, path: str):
        self.path, self.tmp, self.special = path, None, False
        target = os.path.realpath(path)
        folder = os.path.dirname(target)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise CodecError(f"{path}: cannot write ({exc.strerror})") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise CodecError(f"{path}: is a directory")
        if st is not None and not stat.S_ISREG(st.st_mode):
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
                raise CodecError(f"{path}: not a regular file, a character device or a pipe; refusing to write it")
            self.special, self.target = True, target
            self.file = tempfile.TemporaryFile()
            return
        if not os.path.isdir(folder):
            raise CodecError(f"{path}: folder {os.path.dirname(os.path.abspath(path))} does not exist")
        self.target = target
        self.mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
        remove_stale_parts(folder)
        try:
            fd, self.tmp = tempfile.mkstemp(dir=folder, prefix=PART_PREFIX, suffix=PART_SUFFIX)
        except OSError as exc:
            raise CodecError(f"{path}: cannot write into folder {folder} ({exc.strerror})") from None
        PARTS.add(self.tmp)
        self.file = os.fdopen(fd, "w+b")

    def commit(self) -> None:
        try:
            if self.special:
                self.file.seek(0)
                with open(self.target, "wb") as out:
                    shutil.copyfileobj(self.file, out)
                self.file.close()
                return
            self.file.flush()
            os.fchmod(self.file.fileno(), self.mode)
            self.file.close()
            os.replace(self.tmp, self.target)
            PARTS.discard(self.tmp)
            self.tmp = None
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from None

    def abort(self) -> None:
        self.file.close()
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            PARTS.discard(self.tmp)
            self.tmp = None

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is None:
            self.commit()
            return
        self.abort()
        error = write_error(self.path, exc)
        if error is not None:
            raise error from None
