"""The .acdc file path: ``Frame``s <-> the container's chunks (``bitstream/container.py``).

Audio goes through ``FrameEncoder``/``FrameDecoder`` (``stream/``) over chunks of ``FRAMES_PER_CHUNK``
frames, so an hour-long file is handled in bounded memory, and the result equals the offline ``Codec`` path.
A chunk's codes are entropy-coded where that is smaller than fixed-rate packing; in a hybrid stream each codes
chunk is followed by its frames' low band (the last one also holds the MDCT frame past the end).

Band-limited input (recorded below 16 kHz, e.g. 8 kHz telephone audio) comes out of the model quieter than it
went in: the model learned speech with energy up to 8 kHz, and renders speech without it 2.5-3 dB low. For
such input the encoder decodes what it wrote, as the decoder will, and records the level difference as the
header's output gain, which the decoder applies (as Opus's header carries an output gain)."""
from __future__ import annotations

import io
from typing import BinaryIO, Iterable, Iterator, Sequence

import numpy as np

from .bitstream.container import (CHUNK_CONTEXT, CHUNK_FIXED, CHUNK_LOW, CHUNK_RANGE, FLAG_CONTEXT, FLAG_ENTROPY, MAX_GAIN,
                                  Header, Writer, read_chunks, read_header)
from .bitstream.entropy import decode_fixed, encode_fixed
from .constants import SAMPLE_RATE
from .errors import CodecError
from .stream import modes
from .stream.decoder import FrameDecoder
from .stream.encoder import FrameEncoder
from .stream.engine import Engine, check_model, load_engine
from .stream.frames import Frame, codes_of, frames_of, low_of
from .stream.lowband import layer as low_band_layer
from .stream.search import CodeSearch

FRAMES_PER_CHUNK = 500  # 10 s per chunk


class _ChunkAudio:
    """Chunks' codes and low-band bytes -> audio, as a reader decodes them (``decode_stream``; the encoder's
    level measurement, ``_Level``)."""

    def __init__(self, engine: Engine, layer, length: int | None = None, postfilter: float | None = None):
        self.layer, self.closing = layer, None
        self.decoder = FrameDecoder(engine.codec, length=length, postfilter=postfilter)
        if layer:
            self.decoder.use_low_band(layer)

    def chunk(self, codes: np.ndarray, low: bytes | None, n_low: int) -> np.ndarray:
        """A chunk's codes (rows, n) and its low band's bytes of ``n_low`` MDCT frames (None without one)."""
        rows = self.layer.decode_frames(low, n_low) if self.layer else None
        n = codes.shape[1]
        self.closing = rows[n] if rows is not None and len(rows) > n else None
        return self.decoder.decode(frames_of(codes, None if rows is None else rows[:n]))

    def flush(self) -> np.ndarray:
        return self.decoder.flush(self.closing)


class _Level:
    """The input's and the decoded output's energy, the second measured by decoding each chunk as
    ``decode_stream`` will -> ``Header.output_gain``."""

    def __init__(self, engine: Engine, mode: modes.Mode):
        self.audio = _ChunkAudio(engine, mode.layer())
        self.heard = self.made = 0.0

    def hear(self, block: np.ndarray) -> None:
        self.heard += _energy(block)

    def decode(self, codes: np.ndarray, low: bytes | None, n_low: int) -> None:
        self.made += _energy(self.audio.chunk(codes, low, n_low))

    def gain(self) -> int:
        """The output gain in 1/256 dB (0 for silence), within the format's bounds."""
        self.made += _energy(self.audio.flush())
        if self.heard < 1e-6 or self.made < 1e-6:
            return 0
        return int(np.clip(round(256 * 10 * np.log10(self.heard / self.made)), -MAX_GAIN, MAX_GAIN))


def _energy(y: np.ndarray) -> float:
    return float(np.sum(np.square(y, dtype=np.float64)))


def gain_factor(header: Header) -> float:
    """What the decoder multiplies its output by (``Header.output_gain``)."""
    return 10.0 ** (header.output_gain / 256 / 20)


class _ChunkWriter:
    """Frames -> the chunks of one .acdc stream (``bitstream.container.Writer``). Each chunk's codes are
    coded with the context model (``bitstream/context.py``; the per-stage tables where a model has only
    those), or fixed-rate where that is not smaller."""

    def __init__(self, engine: Engine, mode: modes.Mode, entropy: bool, level: _Level | None = None,
                 searched: bool = False):
        self.engine, self.mode, self.layer, self.level = engine, mode, mode.layer(), level
        context = (engine.searched or engine.context) if searched else engine.context  # (``Engine.searched``)
        self.context = context if entropy and mode.rows >= 2 else None
        self.tables = engine.entropy if entropy and self.context is None else None
        self.writer = Writer()
        self.chunks: list[bytes] = []
        self.used: set[bytes] = set()

    def add(self, frames: Sequence[Frame], closing: np.ndarray | None = None) -> None:
        """One chunk of frames (and, in the last chunk of a hybrid stream, the low band's ``closing`` frame)."""
        codec, codes = self.engine.codec, codes_of(frames)
        payload, marker = encode_fixed(codes, codec.cfg.bits_per_code), CHUNK_FIXED
        if self.context is not None:
            coded, how = self.context.encode(codes), CHUNK_CONTEXT
        elif self.tables is not None:
            coded, how = self.tables.encode(codes, codec.row_tables(self.mode.rows)), CHUNK_RANGE
        else:
            coded, how = None, None
        if coded is not None and len(coded) < len(payload):  # entropy-coded only where that is smaller
            payload, marker = coded, how
        self.used.add(marker)
        self.chunks.append(self.writer.chunk(len(frames), payload, marker=marker))
        low = low_bytes = None
        if self.layer:
            low = low_of(frames) if closing is None else np.concatenate([low_of(frames), closing[None]])
            low_bytes = self.layer.encode_frames(low)
            self.chunks.append(self.writer.chunk(len(low), low_bytes, marker=CHUNK_LOW))
        if self.level:
            self.level.decode(codes, low_bytes, 0 if low is None else len(low))

    def finish(self, num_samples: int, input_rate: int, input_channels: int) -> bytes:
        """The whole file: header, the chunks so far, end record (CodecError if a reader would refuse it)."""
        cfg = self.engine.codec.cfg
        header, end = self.writer.finish(Header(
            cfg.sample_rate, 1, self.mode.rows, cfg.bits_per_code, cfg.frame_size, num_samples, self.engine.model_id,
            FRAMES_PER_CHUNK, (FLAG_ENTROPY if CHUNK_RANGE in self.used else 0) | (
                FLAG_CONTEXT if CHUNK_CONTEXT in self.used else 0), low_band_hz=self.mode.low_hz,
            low_band_snr=self.mode.low_snr_db, input_rate=input_rate, input_channels=input_channels,
            context_id=self.context.id if CHUNK_CONTEXT in self.used else bytes(8),
            output_gain=self.level.gain() if self.level else 0))
        return header + b"".join(self.chunks) + end


def encode_blocks(blocks: Iterable[np.ndarray], mode: modes.Mode, engine: Engine, entropy: bool = True,
                  input_rate: int = SAMPLE_RATE, input_channels: int = 1, search: int = 0) -> bytes:
    """Audio blocks (float32, 16 kHz mono) -> a complete .acdc byte string (format version 4) in ``mode``;
    ``input_rate``/``input_channels``: the input file's own, recorded in the header (below 16 kHz the output
    gain is measured: see the module's docstring).

    Memory holds one block of audio, a chunk of frames and the compressed output (1.5 kB per second at 12 kbps).
    ``search``: steps of analysis by synthesis per chunk (``stream/search.py``; 0 = the encoder's codes as they are).
    Without the context model (``entropy`` off, or none installed) the mode sends its fixed-rate rows (``Mode.coded``)."""
    mode = mode.coded(entropy and engine.context is not None)
    if search and not mode.searchable:
        raise CodecError(modes.search_scope())
    level = _Level(engine, mode) if input_rate < SAMPLE_RATE else None
    encoder, writer = FrameEncoder(engine.codec, mode), _ChunkWriter(engine, mode, entropy, level, searched=bool(search))
    searcher = CodeSearch(engine.codec, search, mode.layer()) if search else None
    add = writer.add if searcher is None else lambda frames, closing=None: writer.add(searcher.refine(frames), closing)
    pending: list[Frame] = []
    num_samples = 0
    for block in blocks:
        num_samples += len(block)
        if level:
            level.hear(block)
        if searcher:
            searcher.hear(block)
        pending += encoder.push(block)
        while len(pending) > FRAMES_PER_CHUNK:  # (the last chunk waits for the end: it takes the closing frame)
            add(pending[:FRAMES_PER_CHUNK])
            pending = pending[FRAMES_PER_CHUNK:]
    if num_samples == 0:
        raise CodecError("no audio to compress")
    pending += encoder.flush()
    while pending:
        add(pending[:FRAMES_PER_CHUNK], encoder.closing if len(pending) <= FRAMES_PER_CHUNK else None)
        pending = pending[FRAMES_PER_CHUNK:]
    return writer.finish(num_samples, input_rate, input_channels)


def decode_stream(f: BinaryIO, engine: Engine, postfilter: float | None = None) -> tuple[Header, Iterator[np.ndarray]]:
    """Read the header now; return it and an iterator of decoded audio blocks (float32, exact length).
    ``postfilter``: the decoder's postfilter exponent (None: the model's own; 1: off)."""
    header = read_header(f)
    check_model(header, engine)
    layer = low_band_layer(header.low_band_hz, float(header.low_band_snr)) if header.low_band_hz else None

    gain = gain_factor(header)
    context = engine.context_for(header.context_id)

    def decoded() -> Iterator[np.ndarray]:
        audio = _ChunkAudio(engine, layer, header.num_samples, postfilter)
        for n_frames, payload, marker, low in read_chunks(f, header):
            if marker == CHUNK_CONTEXT:
                codes = context.decode(payload, header.n_q, n_frames)
            elif marker == CHUNK_RANGE:
                codes = engine.entropy.decode(payload, engine.codec.row_tables(header.n_q), n_frames)
            else:
                codes = decode_fixed(payload, header.n_q, n_frames, header.bits)
            yield audio.chunk(codes, low[1] if low else None, low[0] if low else 0)
        yield audio.flush()

    return header, (out * gain if gain != 1 else out for out in decoded() if len(out))


def compress(wav: np.ndarray, kbps: float = 6.0, engine: Engine | None = None, entropy: bool = True,
             hybrid: bool = False, search: int = 0) -> bytes:
    """float32 mono 16 kHz array -> .acdc bytes at the mode of ``kbps`` (``hybrid``: its hybrid mode; ``search``:
    steps of analysis by synthesis, ``stream/search.py``)."""
    return encode_blocks([np.asarray(wav, dtype=np.float32)], modes.mode(kbps, hybrid), engine or load_engine(),
                         entropy, search=search)


def decompress(data: bytes, engine: Engine | None = None, postfilter: float | None = None) -> np.ndarray:
    """.acdc bytes -> float32 mono 16 kHz array of the original length."""
    _, blocks = decode_stream(io.BytesIO(data), engine or load_engine(), postfilter)
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
