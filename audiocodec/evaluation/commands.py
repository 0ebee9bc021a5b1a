"""CLI subcommands: ``evaluate`` (codecs vs clips -> HTML report) and ``encode-latents``. Arguments only."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import CodecError
from ..stream import modes
from .metrics import METRICS
from ..options import add_output_options, search_steps
from .options import parse_list

EVALUATE_EPILOG = """examples:
  audiocodec evaluate samples/ --report reports/samples
  audiocodec evaluate a.wav b.flac --bitrates 1.5,6 --against opus --report /tmp/eval
  audiocodec evaluate ../shared/data/speech/test --bitrates 6 --against pca --show 3 --report /tmp/eval

what it writes in OUT/:
  index.html      rate-distortion plot, summary table, A/B listening table (original, this codec and Opus
                  at the same bitrates), per clip spectrograms + <audio> players
  results.json    every number (per clip and codec, and per-codec summaries)
  results.csv     one row per clip and codec
  rd.png          PESQ-WB, ViSQOL and STOI vs actual kbps for every codec
  clips/NAME/     original.wav/.png and CODEC.wav/.png for the first --show clips

Bitrates are measured, not nominal: bits of codec payload / seconds of audio (the neural codec through
real compress/decompress; Opus packets without the Ogg container; Codec2's bit file; the PCA codec's
packed indices). Opus (6, 8, 12, 16 kbps) and Codec2 (3200, 1200) need opus-tools and codec2 installed;
without them they are skipped with a note. pca is the linear baseline (audiocodec/weights/pca.npz).
Metrics are scored after removing each codec's constant delay (column "delay ms"; Codec2 lags ~20 ms).
RTF (real-time factor) = (encode + decode seconds) / audio seconds, measured on one thread."""

LATENTS_EPILOG = """examples:
  audiocodec encode-latents talk.wav talk.npz
  audiocodec encode-latents talk.wav talk.npz --bitrate 1.5
  python -c "import numpy as np; d = np.load('talk.npz'); print(d['latents'].shape, d['codes'].shape)"

OUT is a NumPy .npz archive (np.load(OUT)), written under exactly the name given, holding:
  latents      float32 (128, frames)  encoder output before quantization, one vector per 20 ms
  codes        int16   (n_q, frames)  the codes at --bitrate (3, 6, 12 or 24 rows; from 3 kbps up the shipped
                                      model sends its pitch in row 0 and RVQ stages in the rest: docs/bitstream.md)
  frame_rate   50.0, sample_rate 16000, num_samples, kbps, model_id"""


def cmd_evaluate(args) -> int:
    from . import product
    from .codecs import FAMILIES, make_codecs
    from .report import run_report
    from .runner import collect_inputs

    from ..runtime import use_threads

    use_threads(1)  # the RTF column is single-threaded (torch and numpy's BLAS), as in scripts/benchmark.py
    bitrates = parse_list(args.bitrates, "--bitrates", cast=float)
    for k in bitrates:
        product.check_bitrate(k)
    which = parse_list(args.metrics, "--metrics", allowed=METRICS) or list(METRICS)
    against = parse_list(args.against, "--against", allowed=FAMILIES[1:]) if args.against.strip().lower() != "none" else []
    paths = collect_inputs(args.inputs)
    if args.limit:
        paths = paths[:args.limit]
    if os.path.exists(args.report) and not os.path.isdir(args.report):
        raise CodecError(f"{args.report}: exists and is not a folder")
    codecs = make_codecs(bitrates, against, weights=args.model, warn=lambda m: print(m, file=sys.stderr), search=args.search)
    model = product.model_info(args.model)
    if args.search:
        model["search"] = args.search
    results = run_report(paths, codecs, args.report, max_clips=args.show, model=model,
                         progress=not args.quiet, which=which, engine=product.engine(args.model))
    if not args.quiet:
        from .tables import summary_rows

        rows = summary_rows(results["summary"], which)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        print(f"report: {os.path.join(args.report, 'index.html')}")
    return 0


def cmd_encode_latents(args) -> int:
    from .. import audio
    from .latents import encode_latents, save

    if os.path.exists(args.output) and not args.force:
        raise CodecError(f"{args.output}: already exists (use -f to overwrite)")
    wav = audio.load(args.input)
    arrays = encode_latents(wav, args.bitrate, args.model)
    save(args.output, arrays)
    if not args.quiet:
        print(f"{args.input} -> {args.output}: latents {arrays['latents'].shape}, codes {arrays['codes'].shape} "
              f"({arrays['frame_rate']:g} frames/s)", file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("evaluate", help="measure the codec against Opus/Codec2/PCA -> HTML report", formatter_class=fmt,
                       description="Run the neural codec at each bitrate, and the reference codecs, on audio clips; "
                                   "measure actual kbps, PESQ-WB, ViSQOL, STOI, ESTOI, SI-SDR and log-mel distance; write a report.",
                       epilog=EVALUATE_EPILOG)
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_FILE", help="audio files, or folders searched recursively")
    p.add_argument("--report", required=True, metavar="OUT", help="folder to write index.html, results.json/.csv and media into")
    p.add_argument("--bitrates", default=",".join(f"{k:g}" for k in modes.bitrates()),
                   help=f"neural (and PCA) bitrates in kbps (default {modes.choices(last=',').replace(' ', '')})")
    p.add_argument("--against", default="hybrid,opus,codec2,pca",
                   help="other codecs: any of hybrid (this codec's hybrid modes, compress --hybrid), opus, codec2, pca, "
                        "or none (default all)")
    p.add_argument("--metrics", default=",".join(METRICS), metavar="LIST",
                   help=f"which judges to run (default all: {','.join(METRICS)}); ViSQOL takes about 0.3 s per second of audio")
    p.add_argument("--show", type=int, default=5, metavar="N", help="clips with players and spectrograms on the page (default 5)")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="use only the first N clips")
    p.add_argument("--model", help="weights file (default: the shipped model)")
    p.add_argument("--search", type=search_steps, default=0, metavar="STEPS",
                   help="encode the neural codec's 3, 6 and 12 kbps and its hybrid modes with this many steps of "
                        "analysis by synthesis (compress --search; about real time per 30 steps)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or table")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("encode-latents", help="audio -> encoder latents and codes (.npz)", formatter_class=fmt,
                       description="Run only the encoder: write the continuous 128-d latents (before quantization) "
                                   "and the codes of an audio file to a NumPy .npz archive.",
                       epilog=LATENTS_EPILOG)
    p.add_argument("input", help="audio file (any rate/channels; mixed to mono 16 kHz)")
    p.add_argument("output", help="output .npz archive")
    p.add_argument("-b", "--bitrate", type=float, default=6.0,
                   help=f"which codes to include: {modes.choices(last=' or ')} kbps (default 6)")
    add_output_options(p)
    p.set_defaults(func=cmd_encode_latents)
