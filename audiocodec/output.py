"""Files out: audio in the format its name asks for, and every output written the way ``cp`` would leave it,
but atomically: into a temp part beside the target, then renamed over it, with mode 0666 less the umask (or
the mode of the file replaced). An existing character device or FIFO (``/dev/null``, a pipe) is written
into, never replaced; block devices and sockets are refused. Parts are removed on errors and on SIGTERM, and
parts that earlier runs left behind (SIGKILL, power loss) are removed after an hour. Every OS error becomes
one line (a CodecError).
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

PART_PREFIX, PART_SUFFIX = ".audiocodec-", ".part"  # a temp part beside an output being written
STALE_PART_SECONDS = 3600  # a temp part this old in an output folder was left by a killed run

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
