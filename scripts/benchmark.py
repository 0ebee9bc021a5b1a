"""Benchmark: the neural codec at every bitrate and its hybrid modes against Opus, Codec2 and the PCA baseline.

    python scripts/benchmark.py                               # 60 fixed clips of the shared test split
    python scripts/benchmark.py --limit 10                    # quick look
    python scripts/benchmark.py samples/ --out /tmp/bench     # your own clips
    python scripts/benchmark.py --model cand.safetensors --against '' --out /tmp/cand \
        --compare reports/benchmark/results.json              # a candidate against the shipped model, clip by clip
    python scripts/benchmark.py --held-out 1 --clips 200 ...  # the same on 200 clips outside the reported 60
    python scripts/benchmark.py --held-out 5 --clips 200 --partial-block ...  # the 51 unreported clips after blocks 1-4
    python scripts/benchmark.py --postfilter 1 ...            # the neural and hybrid decoders without their postfilter
    python scripts/benchmark.py --search 30 ...               # their encoders searching their codes (compress --search)

Per codec: actual kbps (payload bits of real encoder output / seconds), PESQ-WB, ViSQOL, STOI, ESTOI,
SI-SDR, log-mel distance, and the encode+decode real-time factor on ONE thread. Writes OUT/benchmark.md,
OUT/rd.png (PESQ-WB, ViSQOL and STOI vs kbps) and OUT/results.json (read by scripts/make_figures.py).
benchmark.md also has the targets' head-to-head comparisons clip by clip (1.5 kbps against Codec2, 6 and 12
against Opus at the same rate) and PESQ-WB and ViSQOL per source folder (the test split's speechocean762 and
Speech Commands clips); with --compare, the change against an earlier results.json, clip by clip.
The work is done by audiocodec.evaluation (the same code as `audiocodec evaluate`)."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch


from audiocodec.errors import CodecError
from audiocodec.evaluation.codecs import FAMILIES, make_codecs
from audiocodec.evaluation.metrics import LABELS, METRICS
from audiocodec.evaluation.options import parse_list
from audiocodec.evaluation.plots import rd_panels, rd_plot
from audiocodec.evaluation.product import model_info
from audiocodec.evaluation.report import write_json
from audiocodec.evaluation.tables import (PAIRED_METRICS, describe_model, paired_rows, source_rows,
                                          summary_rows, versus_rows)
from audiocodec.evaluation.runner import (REPORTED_CLIPS, collect_inputs, evaluate, fixed_test_clips,
                                          held_out_clips)
from audiocodec.runtime import use_threads


# the comparisons the targets name: 1.5 kbps against Codec2, 6 and 12 kbps against Opus at the same rate
HEAD_TO_HEAD = [("neural-1.5", "codec2-1.2"), ("neural-1.5", "codec2-3.2"), ("neural-3", "codec2-3.2"),
                ("neural-6", "opus-6"), ("neural-12", "opus-12"), ("hybrid-6", "opus-6"), ("hybrid-12", "opus-12")]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def md_table(rows: list[list[str]]) -> list[str]:
    """Table cells (header row first) -> the lines of a markdown table."""
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(r) + " |" for r in rows[1:]]


def markdown(results: dict, clip_desc: str) -> str:
    rows = summary_rows(results["summary"], results["metrics"])
    lines = [f"# Benchmark ({results['created']})", "",
             f"- clips: {clip_desc}: {len(results['clips'])} clips, {sum(c['duration_s'] for c in results['clips']):.1f} s",
             f"- {describe_model(results['model'])}",
             f"- CPU: {cpu_name()}, torch {torch.__version__}, 1 thread", "", *md_table(rows)]
    lines += ["", "**actual kbps**: payload bits of the real encoder output / seconds of audio (neural: range-coded "
              ".acdc chunks (context-coded) without the 58-byte header and 12-byte chunk headers; Opus: audio packets without Ogg "
              "pages and header packets; Codec2: headerless bit file; PCA: packed indices). **file kbps**: whole files. "
              "Metrics: means over clips; PESQ-WB and ViSQOL skip clips where they detect no speech (PESQ-WB scored "
              f"{min(s.get('pesq_wb_n', 0) for s in results['summary'])} of {len(results['clips'])} clips); ViSQOL is v3 in speech "
              "mode with its lattice MOS mapper (the reference implementation's default), which scores clean speech "
              "against itself about 4 to 4.7, not 5. All computed after removing "
              "each codec's constant delay (**delay ms**: the neural codec's is 0 by construction; for the others, the lag "
              "that best aligns the codec's first 5 clips, found on the log-mel envelope and refined on the waveform). "
              "**RTF**: (encode + decode seconds) / audio seconds on one thread; Opus and Codec2 include starting "
              "their command-line programs, so theirs is an upper bound.", "", "![rate-distortion](rd.png)", ""]
    return "\n".join(lines)


def _searched(results: dict) -> str:
    """How a run encoded, for the R-D plot's legend: 'plain encoder' or 'search 30'."""
    steps = results.get("model", {}).get("search", 0)
    return f"search {steps}" if steps else "plain encoder"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="clips or folders (default: --clips fixed clips of the test split)")
    ap.add_argument("--clips", type=int, default=REPORTED_CLIPS,
                    help=f"how many test-split clips by default (default {REPORTED_CLIPS})")
    ap.add_argument("--seed", type=int, help="seed choosing the default clips (default 0; not with --held-out)")
    ap.add_argument("--held-out", type=int, default=0, metavar="BLOCK",
                    help=f"use block BLOCK (1, 2, ...) of --clips test clips outside the reported {REPORTED_CLIPS}, to choose "
                         "between candidates without tuning on the reported numbers")
    ap.add_argument("--partial-block", action="store_true",
                    help="with --held-out: the last block may be shorter than --clips (block 5 of 200: 51 clips)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N clips (quick runs)")
    ap.add_argument("--bitrates", default="1.5,3,6,12")
    ap.add_argument("--against", default="hybrid,opus,codec2,pca",
                    help="other codecs, comma-separated (hybrid: this codec's hybrid modes, compress --hybrid); '' for none")
    ap.add_argument("--model", help="weights file (default: the shipped model)")
    ap.add_argument("--search", type=int, default=0, metavar="STEPS",
                    help="encode the neural and hybrid codecs with this many steps of analysis by synthesis (compress --search)")
    ap.add_argument("--postfilter", type=float, metavar="GAMMA",
                    help="decode the neural and hybrid codecs with this postfilter exponent (1: off; default: the model's own)")
    ap.add_argument("--out", default="reports/benchmark", help="output folder (default reports/benchmark)")
    ap.add_argument("--compare", metavar="RESULTS_JSON", help="an earlier run's results.json: add the change, clip by clip")
    ap.add_argument("--metrics", default=",".join(METRICS), help=f"which judges to run (default all: {','.join(METRICS)})")
    args = ap.parse_args()
    if args.held_out and args.inputs:
        raise CodecError("--held-out draws clips of the test split: give it no clips or folders")
    if args.partial_block and not args.held_out:
        raise CodecError("--partial-block applies to --held-out blocks only")
    if args.held_out and args.seed is not None:
        raise CodecError("--held-out blocks are fixed: --seed does not apply to them")
    seed = args.seed or 0
    if args.compare and not os.path.isfile(args.compare):
        raise CodecError(f"{args.compare}: no such results file")

    use_threads(1)  # the RTF column: torch and numpy's BLAS on one thread
    if args.inputs:
        paths, desc = collect_inputs(args.inputs), ", ".join(args.inputs)
    elif args.held_out:
        paths, desc = held_out_clips(args.clips, args.held_out, args.partial_block), f"shared test split, held-out block {args.held_out}"
    else:
        paths, desc = fixed_test_clips(args.clips, seed), f"shared test split, fixed subset (seed {seed})"
    if args.limit:
        paths = paths[:args.limit]
    which = parse_list(args.metrics, "--metrics", allowed=METRICS) or list(METRICS)
    codecs = make_codecs(parse_list(args.bitrates, "--bitrates", cast=float),
                         parse_list(args.against, "--against", allowed=FAMILIES[1:]), weights=args.model,
                         warn=lambda msg: print(msg, file=sys.stderr), postfilter=args.postfilter, search=args.search)
    results = evaluate(paths, codecs, which=which)
    results["model"] = model_info(args.model)
    if args.postfilter is not None:
        results["model"]["postfilter"] = args.postfilter
    if args.search:
        results["model"]["search"] = args.search
    results["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["clip_set"] = desc
    os.makedirs(args.out, exist_ok=True)
    write_json(results, os.path.join(args.out, "results.json"))
    old = None
    if args.compare:
        with open(args.compare) as f:
            old = json.load(f)
    rd_plot(results["summary"], os.path.join(args.out, "rd.png"), metrics=rd_panels(which),
            before=old and old.get("summary"), labels=(_searched(results), f"{_searched(old)} (--compare)" if old else ""))
    text = markdown(results, desc)
    judges = [m for m in PAIRED_METRICS if m in which]
    tables = [("Head to head, clip by clip (the codec's mean, and its lead over the other ± standard error)",
               versus_rows(results, HEAD_TO_HEAD, judges))]
    tables += [(f"{LABELS[m]} by source folder", source_rows(results, m)) for m in ("pesq_wb", "visqol") if m in which]
    for title, rows in tables:
        if len(rows) > 1 and len(rows[0]) > 2:
            text += "\n".join([f"## {title}", "", *md_table(rows)]) + "\n\n"
    if old is not None:
        rows = paired_rows(old, results, judges)
        before = old.get("model", {}).get("model_id", "?")
        text += "\n".join(["", f"## Against an earlier run (`{args.compare}`, model `{before}`), clip by clip", "",
                           *md_table(rows)]) + "\n"
    with open(os.path.join(args.out, "benchmark.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"wrote {args.out}/benchmark.md, rd.png, results.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CodecError as e:
        sys.exit(f"benchmark: {e}")
