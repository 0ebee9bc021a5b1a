"""Run a list of codecs over a list of clips and measure each result: the core of ``evaluate`` and of
``scripts/benchmark.py``. Returns plain dicts (JSON-ready): one row per (clip, codec) and one summary per codec.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np

from .. import audio
from ..constants import SAMPLE_RATE
from ..errors import CodecError
from . import metrics as M
from .base import CodecUnderTest

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")


def collect_inputs(paths: list[str]) -> list[str]:
    """Files as given, folders expanded (recursively, sorted) to the audio files inside them."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.lower().endswith(AUDIO_EXTENSIONS))
            if not found:
                raise CodecError(f"{p}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
            out += found
        elif os.path.exists(p):
            out.append(p)
        else:
            raise CodecError(f"{p}: no such file or folder")
    if not out:
        raise CodecError("no input clips")
    return out


def test_split() -> list[str]:
    """All clips of the shared test split, in manifest order."""
    from .corpus import list_clips

    try:
        return list_clips(split="test")
    except OSError as exc:
        raise CodecError(f"shared test split not found ({exc.filename}); pass clips or folders instead") from None


def fixed_test_clips(n: int, seed: int = 0) -> list[str]:
    """``n`` clips of the shared test split, drawn with a fixed seed (the same clips on every machine)."""
    clips = test_split()
    pick = np.sort(np.random.default_rng(seed).choice(len(clips), size=min(n, len(clips)), replace=False))
    return [clips[i] for i in pick]


REPORTED_CLIPS = 60  # the benchmark's reported clips: fixed_test_clips(60), seed 0


def held_out_clips(n: int, block: int, partial: bool = False) -> list[str]:
    """Block ``block`` (1, 2, ...) of ``n`` test-split clips, none of them among the benchmark's reported clips.

    For choosing between candidate models: a candidate picked on the clips that are then reported looks better
    there than it is (and the model it must beat, picked on them before, does too). The clips outside the
    reported ones are shuffled once with a fixed seed and cut into disjoint blocks, so a choice can be made on
    one block and confirmed on another. ``partial``: the last block may hold fewer than ``n`` clips (of 851
    unreported clips, block 5 of 200 is the 51 left after blocks 1-4)."""
    reported = set(fixed_test_clips(REPORTED_CLIPS))
    rest = [c for c in test_split() if c not in reported]
    fits = (block - 1) * n < len(rest) if partial else block * n <= len(rest)
    if n < 1 or block < 1 or not fits:
        raise CodecError(f"held-out block {block} of {n} clips does not fit in the {len(rest)} unreported test clips")
    order = np.random.default_rng(0).permutation(len(rest))[(block - 1) * n:block * n]
    return [rest[i] for i in np.sort(order)]


def clip_names(paths: list[str]) -> list[str]:
    """Short unique names for clips (file stem, prefixed by parent folders when stems repeat)."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    names = []
    for p, s in zip(paths, stems):
        if stems.count(s) > 1:
            s = "_".join(os.path.normpath(os.path.splitext(p)[0]).split(os.sep)[-3:])
        names.append("".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s))
    return names


DELAY_CLIPS, DELAY_SECONDS = 5, 15.0  # a codec's delay is estimated on its first clips (up to 5, or 15 s)


def _row(name: str, codec: CodecUnderTest, coded, duration: float) -> dict:
    return {"clip": name, "codec": codec.name, "family": codec.family, "nominal_kbps": codec.nominal_kbps,
            "duration_s": duration, "payload_bytes": coded.payload_bytes, "file_bytes": coded.file_bytes,
            "kbps": 8 * coded.payload_bytes / duration / 1000, "file_kbps": 8 * coded.file_bytes / duration / 1000,
            "encode_s": coded.encode_s, "decode_s": coded.decode_s, "rtf": (coded.encode_s + coded.decode_s) / duration}


def evaluate(paths: list[str], codecs: list[CodecUnderTest], which=M.METRICS,
             on_decoded: Callable[[int, str, np.ndarray, np.ndarray], None] | None = None,
             progress: bool = True, align: bool = True) -> dict:
    """Every codec on every clip. ``on_decoded(clip_index, codec_name, original, decoded)`` is called
    after each run (the report writes audio and spectrograms there, so little is kept in memory).

    With ``align``, each codec's constant delay is removed before scoring (so STOI and SI-SDR judge the
    audio, not the latency; Codec2 lags by about 20 ms): the codec's own ``delay`` where it knows it (the
    neural codec: 0), else ``metrics.common_delay`` of its first clips (up to 5 clips or 15 s, held in
    memory until then), applied to all its clips.

    ``progress``: a bar on stderr when it is a terminal, else (a log file) one line per clip."""
    from tqdm import tqdm

    names = clip_names(paths)
    clips, rows = [], []
    delay: dict[str, int | None] = {c.name: c.delay if align else 0 for c in codecs}
    pending: dict[str, list] = {c.name: [] for c in codecs}

    def score(key, row, wav, decoded, d):
        row["delay_ms"] = 1000 * d / SAMPLE_RATE
        row.update(M.all_metrics(*M.align(wav, decoded, d), which=which))
        rows.append((key, row))

    tty = progress and sys.stderr.isatty()
    bar = tqdm(total=len(paths) * len(codecs), desc="evaluating", unit="run", disable=not tty, file=sys.stderr)
    try:
        for ci, (path, name) in enumerate(zip(paths, names)):
            wav = audio.load(path)
            duration = len(wav) / SAMPLE_RATE
            clips.append({"name": name, "path": os.path.abspath(path), "duration_s": duration})
            last = ci == len(paths) - 1
            for ki, codec in enumerate(codecs):
                bar.set_postfix_str(f"{name} {codec.name}", refresh=False)
                coded = codec.run(wav)
                row = _row(name, codec, coded, duration)
                if on_decoded is not None:
                    on_decoded(ci, codec.name, wav, coded.decoded)
                if delay[codec.name] is not None:
                    score((ci, ki), row, wav, coded.decoded, delay[codec.name])
                else:
                    held = pending[codec.name]
                    held.append(((ci, ki), row, wav, coded.decoded))
                    if last or len(held) >= DELAY_CLIPS or sum(h[1]["duration_s"] for h in held) >= DELAY_SECONDS:
                        delay[codec.name] = M.common_delay([(w, y) for _, _, w, y in held])
                        for key, r, w, y in held:
                            score(key, r, w, y, delay[codec.name])
                        held.clear()
                bar.update(1)
            if progress and not tty:
                print(f"evaluated clip {ci + 1}/{len(paths)}: {name} ({duration:.1f} s, {len(codecs)} codecs)", file=sys.stderr)
    finally:
        bar.close()
    rows = [r for _, r in sorted(rows, key=lambda kr: kr[0])]
    return {"clips": clips, "codecs": [c.name for c in codecs], "metrics": list(which), "rows": rows,
            "summary": summarize(rows, [c.name for c in codecs], which)}


def summarize(rows: list[dict], order: list[str], which=M.METRICS) -> list[dict]:
    """Per codec: bitrates over all clips together (total bits / total seconds), metrics as means over
    clips (NaN skipped), real-time factor as total compute time / total audio time."""
    out = []
    for name in order:
        rs = [r for r in rows if r["codec"] == name]
        if not rs:
            continue
        seconds = sum(r["duration_s"] for r in rs)
        s = {"codec": name, "family": rs[0]["family"], "nominal_kbps": rs[0]["nominal_kbps"], "clips": len(rs),
             "seconds": seconds,
             "kbps": 8 * sum(r["payload_bytes"] for r in rs) / seconds / 1000,
             "file_kbps": 8 * sum(r["file_bytes"] for r in rs) / seconds / 1000,
             "rtf": sum(r["encode_s"] + r["decode_s"] for r in rs) / seconds,
             "delay_ms": rs[0]["delay_ms"]}
        for m in which:
            s[m] = M.mean_ignoring_nan(r[m] for r in rs)
            s[m + "_n"] = int(sum(np.isfinite(r[m]) for r in rs))
        out.append(s)
    return out
