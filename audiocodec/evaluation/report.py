"""Write an evaluation as files: ``index.html`` (``page.py``), ``results.json``, ``results.csv``, ``rd.png``,
``entropy.png`` (what the entropy coder learned, ``entropy.py``) and ``clips/<clip>/<codec>.{wav,png}`` (the
media the page links to)."""
from __future__ import annotations

import csv
import datetime
import json
import math
import os

import numpy as np

from .. import output
from . import metrics as M
from .page import render_html
from .plots import rd_panels, rd_plot, spectrogram_png
from .runner import clip_names, evaluate

CSV_FIELDS = ["clip", "codec", "family", "nominal_kbps", "kbps", "file_kbps", "payload_bytes", "file_bytes", "duration_s",
              *M.METRICS, "delay_ms", "encode_s", "decode_s", "rtf"]


def strict_json(obj):
    """NaN/inf -> None, so results.json is strict JSON (readable by browsers and jq)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(results: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(strict_json(results), f, indent=1, allow_nan=False)


def write_tables(results: dict, out: str) -> None:
    """results.json and results.csv (one row per clip and codec; a metric not measured is left empty)."""
    write_json(results, os.path.join(out, "results.json"))
    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in results["rows"]:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


class ClipWriter:
    """``on_decoded`` callback: writes wav + spectrogram of the original and each decoded version for the
    first ``max_clips`` clips."""

    def __init__(self, out: str, names: list[str], max_clips: int):
        self.out, self.names, self.max_clips = out, names, max_clips

    def folder(self, ci: int) -> str:
        return os.path.join(self.out, "clips", self.names[ci])

    def __call__(self, ci: int, codec: str, original: np.ndarray, decoded: np.ndarray) -> None:
        if ci >= self.max_clips:
            return
        d = self.folder(ci)
        if not os.path.exists(os.path.join(d, "original.wav")):
            os.makedirs(d, exist_ok=True)
            output.save(os.path.join(d, "original.wav"), original)
            spectrogram_png(original, os.path.join(d, "original.png"), "original")
        output.save(os.path.join(d, f"{codec}.wav"), decoded)
        spectrogram_png(decoded, os.path.join(d, f"{codec}.png"), codec)


def run_report(paths: list[str], codecs, out: str, max_clips: int = 5, model: dict | None = None,
               progress: bool = True, which=M.METRICS, engine=None, entropy_clips: int = 20) -> dict:
    """Evaluate ``codecs`` on ``paths`` with the metrics ``which`` and write the whole report folder;
    ``engine``: the product's, whose context model is shown on the first ``entropy_clips`` clips. Returns
    the results dict."""
    os.makedirs(out, exist_ok=True)
    writer = ClipWriter(out, clip_names(paths), max_clips)
    results = evaluate(paths, codecs, which=which, on_decoded=writer, progress=progress)
    results["model"] = model or {}
    results["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    rd_plot(results["summary"], os.path.join(out, "rd.png"), metrics=rd_panels(which))
    if engine is not None:
        from ..audio import load
        from .entropy import plot, story

        told = story(engine, [load(p) for p in paths[:entropy_clips]])
        if told:
            plot(told, os.path.join(out, "entropy.png"))
            results["entropy"] = told
    write_tables(results, out)
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write(render_html(results, max_clips))
    return results
