"""An evaluation's numbers as table cells (header row first), shared by the HTML page, the ``evaluate``
command's printout and the benchmark's markdown: the per-codec summary, head-to-head and before/after
comparisons clip by clip (mean difference +- standard error), and scores per source folder."""
from __future__ import annotations

import math
import os

import numpy as np

from . import metrics as M

PAIRED_METRICS = ("pesq_wb", "visqol", "stoi", "estoi")  # the judges compared clip by clip


def fmt(v, digits=2) -> str:
    """A number for a table cell; 'n/a' for None/NaN."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def describe_model(info: dict) -> str:
    """``product.model_info`` as one line, saying only what the weights' metadata backs up."""
    said = [info.get("weights", "?")]
    if info.get("export_step") is not None:
        said.append(f"exported at step {info['export_step']:,} of its training run")
    if info.get("averaging"):
        said.append(f"weights: {info['averaging']}")
    if info.get("trained_on"):
        said.append(f"trained on {info['trained_on']}")
    if info.get("postfilter") is not None:
        said.append(f"postfilter exponent {info['postfilter']:g} in place of the model's own")
    if info.get("search"):
        said.append(f"encoded with {info['search']} steps of search where compress --search applies")
    if info.get("context_model"):
        said.append(f"context model {info['context_model']}")
        if info.get("search") and info.get("searched_context_model"):
            said.append(f"searched codes' context model {info['searched_context_model']}")
    elif "entropy_model" in info:
        said.append(f"entropy model {'on' if info['entropy_model'] else 'off'}")
    return f"model {info.get('model_id', '?')} ({'; '.join(said)})"


def _digits(metric: str) -> int:
    return 3 if metric in ("stoi", "estoi") else 2


def summary_rows(summary: list[dict], metrics=M.METRICS) -> list[list[str]]:
    """One row per codec: bitrates, the mean of each metric, delay and real-time factor."""
    head = ["codec", "nominal kbps", "actual kbps", "file kbps", *(M.LABELS[m] for m in metrics), "delay ms", "RTF (1 thread)"]
    body = [[s["codec"], f"{s['nominal_kbps']:g}", fmt(s["kbps"]), fmt(s["file_kbps"]),
             *(fmt(s.get(m), _digits(m)) for m in metrics), fmt(s.get("delay_ms"), 0), fmt(s["rtf"], 3)]
            for s in summary]
    return [head] + body


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """'mean of b (mean of b - a +- standard error)' over the entries both have."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    if not len(d):
        return "-"
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else math.nan
    return f"{b[ok].mean():.3f} ({d.mean():+.3f} ± {se:.3f})"


def _scores(rows: list[dict], metric: str) -> np.ndarray:
    return np.array([math.nan if r.get(metric) is None else r[metric] for r in rows], dtype=float)


def paired_rows(old: dict, new: dict, metrics=PAIRED_METRICS) -> list[list[str]]:
    """Clip-by-clip comparison of two ``evaluate`` results (say, a candidate model against the shipped one): per
    codec in both, the new mean and the mean change over the clips both scored, +- its standard error. Paired
    differences cancel what the clips share, so they show a change far smaller than the spread of the means."""
    before = {(r["clip"], r["codec"]): r for r in old["rows"]}
    out = [["codec", "clips"] + [f"{M.LABELS.get(m, m)} (change)" for m in metrics]]
    for codec in dict.fromkeys(r["codec"] for r in new["rows"]):
        pairs = [(before[(r["clip"], codec)], r) for r in new["rows"] if r["codec"] == codec and (r["clip"], codec) in before]
        if pairs:
            was, now = [p[0] for p in pairs], [p[1] for p in pairs]
            out.append([codec, str(len(pairs))] + [paired(_scores(was, m), _scores(now, m)) for m in metrics])
    return out


def versus_rows(results: dict, pairs: list[tuple[str, str]], metrics=PAIRED_METRICS) -> list[list[str]]:
    """Head to head within one run: for each (codec, reference) pair present, the codec's mean and its lead
    over the reference, clip by clip (mean difference +- standard error)."""
    by = {(r["clip"], r["codec"]): r for r in results["rows"]}
    clips = list(dict.fromkeys(r["clip"] for r in results["rows"]))
    out = [["codec", "against"] + [f"{M.LABELS.get(m, m)} (lead)" for m in metrics]]
    for codec, ref in pairs:
        both = [c for c in clips if (c, codec) in by and (c, ref) in by]
        if both:
            theirs, ours = [by[(c, ref)] for c in both], [by[(c, codec)] for c in both]
            out.append([codec, ref] + [paired(_scores(theirs, m), _scores(ours, m)) for m in metrics])
    return out


def source_of(paths: list[str]) -> dict[str, str]:
    """Each clip's source: the first folder under the folder all the clips share (for the test split:
    speechocean762, speech_commands, ...); a clip right in that folder is '.'."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]) if paths else ""
    parts = {p: os.path.relpath(os.path.abspath(p), root).split(os.sep) for p in paths}
    return {p: (rel[0] if len(rel) > 1 else ".") for p, rel in parts.items()}


def source_rows(results: dict, metric: str = "pesq_wb") -> list[list[str]]:
    """Mean ``metric`` per codec and per source folder (``source_of``); header row first."""
    sources = source_of([c["path"] for c in results["clips"]])
    clip_source = {c["name"]: sources[c["path"]] for c in results["clips"]}
    names = list(dict.fromkeys(sources.values()))
    counts = {n: sum(1 for v in clip_source.values() if v == n) for n in names}
    out = [["codec"] + [f"{n} ({counts[n]} clip{'s' * (counts[n] != 1)})" for n in names]]
    for codec in dict.fromkeys(r["codec"] for r in results["rows"]):
        cells = []
        for n in names:
            v = _scores([r for r in results["rows"] if r["codec"] == codec and clip_source.get(r["clip"]) == n], metric)
            cells.append(f"{np.nanmean(v):.2f}" if np.isfinite(v).any() else "-")
        out.append([codec] + cells)
    return out
