"""CLI subcommands for files: compress, decompress, info. Paths, overwrite checks, progress; no codec logic."""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile

import numpy as np

from . import audio
from .constants import CODE_BITS, FRAME_RATE, SAMPLE_RATE
from .errors import CodecError
from .options import add_output_options
from .stream import modes

MAX_STDIN = 256 * 1024 * 1024  # refuse more than this from a pipe (files are streamed instead)


def _rows(engine, n_q: int) -> str:
    """What the n_q rows of a stream are: "12 codebooks", or "pitch + 11 codebooks" where one is the pitch."""
    return f"pitch + {n_q - 1} codebooks" if engine.codec.sends_pitch(n_q) else f"{n_q} codebooks"


def _progress(total: float, desc: str, unit: str = "s"):
    from tqdm import tqdm

    return tqdm(total=round(total, 1), desc=desc, unit=unit, disable=None, leave=False, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} {unit} [{elapsed}<{remaining}]")


def _check_output(path: str, force: bool) -> None:
    if path == "-":
        return
    if os.path.isdir(path):
        raise CodecError(f"{path}: is a directory")
    if os.path.exists(path) and not force:
        raise CodecError(f"{path}: already exists (use -f to overwrite)")


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise CodecError(f"stdin: more than {MAX_STDIN >> 20} MB; pass a file path instead")
    return data


def _open_acdc(path: str):
    """A binary file object for a .acdc path, or for stdin when the path is -."""
    if path == "-":
        return io.BytesIO(_read_stdin())
    audio.check_path(path, "a .acdc file")
    return open(path, "rb")


def _write_output(path: str, data: bytes) -> None:
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        audio.atomic_write(path, data)


def cmd_compress(args) -> int:
    from .compress import encode_blocks, read_info
    from .stream.engine import load_engine

    _check_output(args.output, args.force)
    mode = modes.mode(args.bitrate, args.hybrid)
    engine = load_engine(args.model)
    if args.input == "-":
        wav = audio.load_bytes(_read_stdin())
        blocks, total = [wav], len(wav) / SAMPLE_RATE
    else:
        total = audio.info(args.input).duration if os.path.isfile(args.input) else 0
        blocks = audio.iter_blocks(args.input)
    bar = _progress(total, "compressing")

    def counted(it):
        for b in it:
            yield b
            bar.update(round(len(b) / SAMPLE_RATE, 1))

    try:
        data = encode_blocks(counted(blocks), mode, engine, entropy=not args.fixed_rate)
    finally:
        bar.close()
    _write_output(args.output, data)
    i = read_info(io.BytesIO(data))
    if not args.quiet:
        name = f"{mode.kbps:g} kbps" + (" hybrid" if mode.hybrid else "")
        low = f" + low band < {mode.low_hz} Hz" if mode.hybrid else ""
        print(f"{args.input} -> {args.output}: {i['duration_s']:.2f} s at {name} ({_rows(engine, i['codebooks'])}{low}"
              f", {i['range_coded_chunks']}/{i['chunks']} chunks range-coded), {i['size_bytes']} bytes = "
              f"{i['actual_kbps']:.2f} kbps actual", file=sys.stderr)
    return 0


def cmd_decompress(args) -> int:
    import soundfile as sf

    from .compress import decode_stream
    from .stream.engine import load_engine

    _check_output(args.output, args.force)
    src = _open_acdc(args.input)
    engine = load_engine(args.model)
    tmp = None
    try:
        header, blocks = decode_stream(src, engine, postfilter=1.0 if args.no_postfilter else None)
        bar = _progress(header.duration, "decompressing")
        if args.output == "-":
            target = io.BytesIO()
        else:
            folder = os.path.dirname(os.path.abspath(args.output))
            if not os.path.isdir(folder):
                raise CodecError(f"{args.output}: folder {folder} does not exist")
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".audiocodec-", suffix=".part")
            target = os.fdopen(fd, "w+b")
        kept = [] if args.reference else None
        with sf.SoundFile(target, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16", format="WAV") as out:
            for block in blocks:
                out.write(audio.to_int16(block))
                bar.update(round(len(block) / SAMPLE_RATE, 1))
                if kept is not None:
                    kept.append(block)
        bar.close()
        if args.output == "-":
            _write_output("-", target.getvalue())
        else:
            target.close()
            os.replace(tmp, args.output)
            tmp = None
    finally:
        src.close()
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    if not args.quiet:
        low = f" + low band < {header.low_band_hz} Hz" if header.low_band_hz else ""
        print(f"{args.input} -> {args.output}: {header.duration:.2f} s, {_rows(engine, header.n_q)}{low}", file=sys.stderr)
    if args.reference:
        _report_quality(args.reference, np.concatenate(kept))
    return 0


def _report_quality(reference: str, decoded: np.ndarray) -> None:
    from .evaluation.metrics import pesq_wb, stoi

    ref = audio.load(reference)
    p = pesq_wb(ref, decoded)
    p = "n/a (no speech detected)" if np.isnan(p) else f"{p:.2f}"
    print(f"quality vs {reference}: PESQ-WB {p}, STOI {stoi(ref, decoded):.3f}", file=sys.stderr)


def cmd_info(args) -> int:
    from .compress import read_info

    with _open_acdc(args.input) as f:
        i = read_info(f)
    if args.json:
        print(json.dumps(i, indent=2))
    else:
        rows = f"{i['codebooks']} codebooks x {CODE_BITS} bits x {FRAME_RATE} frames/s"
        mode = (f"{i['bitrate_kbps']:g} kbps hybrid mode: neural {i['neural_kbps']:g} kbps ({rows}) + low band "
                f"< {i['low_band_hz']} Hz at {i['low_band_snr_db']} dB SNR ({i['low_band_kbps']:.2f} kbps)"
                if i.get("hybrid") else f"{i['bitrate_kbps']:g} kbps mode ({rows})")
        print(f"format version  {i['format_version']}\nmodel           {i['model']}\n"
              f"bitrate         {mode}\n"
              f"coding          {i['range_coded_chunks']} of {i['chunks']} chunks range-coded, the rest fixed-rate {CODE_BITS}-bit\n"
              f"audio           {i['sample_rate']} Hz mono, {i['samples']} samples = {i['duration_s']:.2f} s\n"
              f"size            {i['size_bytes']} bytes = {i['actual_kbps']:.2f} kbps actual (header and chunk framing included)")
    return 0


def _modes_help() -> str:
    """The compress epilog's account of the modes, read from the mode table."""
    neural = ", ".join(f"{m.kbps:g} ({m.rows})" for m in modes.modes())
    hybrid = modes.modes(hybrid=True)
    cutoffs = " or ".join(f"{m.low_hz} Hz ({m.kbps:g})" for m in hybrid)
    return (f"bitrate = codebooks x {CODE_BITS} bits x {FRAME_RATE} frames/s: {neural} kbps;\n"
            "entropy coding then saves a little more (see `audiocodec info`).\n\n"
            f"--hybrid ({modes.choices(True, ' or ')} kbps): {modes.hybrid_text()}: the neural codec carries the\n"
            f"spectral envelope, and the band below {cutoffs} is sent as a waveform (MDCT, range-coded), which\n"
            "the autoencoder cannot rebuild exactly: the voice's harmonics. Far better quality per bit\n"
            "(README: results); 20 ms more latency; file format version 2 (send --hybrid streams it).")


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("compress", help="wav/flac/ogg -> .acdc", formatter_class=fmt,
                       description="Compress audio (any rate, depth or channel count; mixed to mono 16 kHz).",
                       epilog="examples:\n  audiocodec compress talk.wav talk.acdc --bitrate 6\n"
                              "  audiocodec compress talk.flac talk.acdc --bitrate 1.5 --fixed-rate\n"
                              "  arecord -f S16_LE -r 16000 -d 5 | audiocodec compress - - > note.acdc\n\n"
                              "  audiocodec compress talk.wav talk.acdc --bitrate 6 --hybrid   # best quality per bit\n\n"
                              + _modes_help())
    p.add_argument("input", help="audio file, or - for stdin")
    p.add_argument("output", help=".acdc file, or - for stdout")
    p.add_argument("-b", "--bitrate", type=float, default=6.0, help=f"{modes.choices(last=' or ')} kbps (default 6)")
    p.add_argument("--fixed-rate", action="store_true",
                   help=f"store plain {CODE_BITS}-bit codes instead of range-coding them")
    p.add_argument("--hybrid", action="store_true",
                   help=f"{modes.choices(True, ' or ')} kbps as {modes.hybrid_text()} sent as a waveform (see below)")
    add_output_options(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help=".acdc -> 16-bit wav", formatter_class=fmt,
                       description="Decompress a .acdc file to a 16 kHz mono 16-bit wav.",
                       epilog="examples:\n  audiocodec decompress talk.acdc talk.out.wav\n"
                              "  audiocodec decompress talk.acdc out.wav --reference talk.wav   # also print PESQ-WB, STOI\n"
                              "  audiocodec decompress talk.acdc plain.wav --no-postfilter      # the decoder's own output\n"
                              "  cat talk.acdc | audiocodec decompress - - | aplay")
    p.add_argument("input", help=".acdc file, or - for stdin")
    p.add_argument("output", help="wav file, or - for stdout")
    p.add_argument("--reference", help="original audio: print PESQ-WB and STOI of the result against it")
    p.add_argument("--no-postfilter", action="store_true",
                   help="skip the decoder's postfilter (which sharpens each frame's spectrum a little: about +0.06 PESQ-WB)")
    add_output_options(p)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("info", help="describe a .acdc file", formatter_class=fmt,
                       description="Print format version, model, bitrate, duration, size and actual kbps; "
                                   "checks every checksum.",
                       epilog="examples:\n  audiocodec info talk.acdc\n  audiocodec info talk.acdc --json")
    p.add_argument("input", help=".acdc file, or - for stdin")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)
