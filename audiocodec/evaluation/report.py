"""Write an evaluation as files: ``index.html`` (R-D plot, table, per-clip spectrograms and players),
``results.json``, ``results.csv``, ``rd.png`` and ``clips/<clip>/<codec>.{wav,png}``.

The page is self-contained (no network). A small script at its end records whether every image decoded
and every audio element loaded its metadata into ``<pre id="load-status">`` (used by the browser test).
"""
from __future__ import annotations

import csv
import datetime
import html
import json
import math
import os

import numpy as np

from .. import audio
from . import metrics as M
from .plots import rd_plot, spectrogram_png
from .runner import evaluate

CSV_FIELDS = ["clip", "codec", "family", "nominal_kbps", "kbps", "file_kbps", "payload_bytes", "file_bytes", "duration_s",
              *M.METRICS, "delay_ms", "encode_s", "decode_s", "rtf"]


def model_info(weights: str | None = None) -> dict:
    """Model id and training metadata of the weights under evaluation."""
    from ..compress import load_engine
    from ..model import default_weights_path

    path = weights or default_weights_path()
    engine = load_engine(weights)
    meta = engine.codec.metadata(path)
    return {"weights": os.path.relpath(path), "model_id": engine.codec.model_id,
            "steps": meta.get("steps", meta.get("step", "?")), "entropy_model": engine.entropy is not None}


def _fmt(v, digits=2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def summary_rows(summary: list[dict]) -> list[list[str]]:
    """The summary as table cells (header first), shared by the HTML page and the benchmark's markdown."""
    head = ["codec", "nominal kbps", "actual kbps", "file kbps", *(M.LABELS[m] for m in M.METRICS), "delay ms", "RTF (1 thread)"]
    body = [[s["codec"], f"{s['nominal_kbps']:g}", _fmt(s["kbps"]), _fmt(s["file_kbps"]),
             *(_fmt(s.get(m), 3 if m in ("stoi", "estoi") else 2) for m in M.METRICS), _fmt(s.get("delay_ms"), 0),
             _fmt(s["rtf"], 3)]
            for s in summary]
    return [head] + body


def _paired(a: np.ndarray, b: np.ndarray) -> str:
    """'mean of b (mean of b - a +- standard error)' over the entries both have."""
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    if not len(d):
        return "-"
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else math.nan
    return f"{b[ok].mean():.3f} ({d.mean():+.3f} ± {se:.3f})"


def paired_rows(old: dict, new: dict, metrics=("pesq_wb", "stoi", "estoi")) -> list[list[str]]:
    """Clip-by-clip comparison of two ``evaluate`` results (say, a candidate model against the shipped one): per
    codec in both, the new mean and the mean change over the clips both scored, +- its standard error. Paired
    differences cancel what the clips share, so they show a change far smaller than the spread of the means."""
    before = {(r["clip"], r["codec"]): r for r in old["rows"]}
    out = [["codec", "clips"] + [f"{M.LABELS.get(m, m)} (change)" for m in metrics]]
    for codec in dict.fromkeys(r["codec"] for r in new["rows"]):
        pairs = [(before[(r["clip"], codec)], r) for r in new["rows"] if r["codec"] == codec and (r["clip"], codec) in before]
        if not pairs:
            continue
        row = [codec, str(len(pairs))]
        for m in metrics:
            row.append(_paired(np.array([p[0].get(m, math.nan) for p in pairs], dtype=float),
                               np.array([p[1].get(m, math.nan) for p in pairs], dtype=float)))
        out.append(row)
    return out


def versus_rows(results: dict, pairs: list[tuple[str, str]], metrics=("pesq_wb", "stoi", "estoi")) -> list[list[str]]:
    """Head to head within one run: for each (codec, reference) pair present, the codec's mean and its lead
    over the reference, clip by clip (mean difference +- standard error)."""
    by = {(r["clip"], r["codec"]): r for r in results["rows"]}
    clips = list(dict.fromkeys(r["clip"] for r in results["rows"]))
    out = [["codec", "against"] + [f"{M.LABELS.get(m, m)} (lead)" for m in metrics]]
    for codec, ref in pairs:
        both = [c for c in clips if (c, codec) in by and (c, ref) in by]
        if both:
            out.append([codec, ref] + [_paired(np.array([by[(c, ref)].get(m, math.nan) for c in both], dtype=float),
                                               np.array([by[(c, codec)].get(m, math.nan) for c in both], dtype=float))
                                       for m in metrics])
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
            v = np.array([r.get(metric, math.nan) for r in results["rows"]
                          if r["codec"] == codec and clip_source.get(r["clip"]) == n], dtype=float)
            cells.append(f"{np.nanmean(v):.2f}" if np.isfinite(v).any() else "-")
        out.append([codec] + cells)
    return out


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
            audio.save(os.path.join(d, "original.wav"), original)
            spectrogram_png(original, os.path.join(d, "original.png"), "original")
        audio.save(os.path.join(d, f"{codec}.wav"), decoded)
        spectrogram_png(decoded, os.path.join(d, f"{codec}.png"), codec)


def run_report(paths: list[str], codecs, out: str, max_clips: int = 5, model: dict | None = None,
               progress: bool = True) -> dict:
    """Evaluate ``codecs`` on ``paths`` and write the whole report folder; returns the results dict."""
    from .runner import clip_names

    os.makedirs(out, exist_ok=True)
    writer = ClipWriter(out, clip_names(paths), max_clips)
    results = evaluate(paths, codecs, on_decoded=writer, progress=progress)
    results["model"] = model or {}
    results["created"] = datetime.datetime.now().isoformat(timespec="seconds")
    rd_plot(results["summary"], os.path.join(out, "rd.png"), metrics=("pesq_wb", "stoi"))
    write_tables(results, out)
    with open(os.path.join(out, "index.html"), "w") as f:
        f.write(render_html(results, max_clips))
    return results


CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.neural td{background:#fff3f0}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;padding:6px;width:350px;font-size:12px}
.card img{width:100%;display:block}.card audio{width:100%;height:32px}code{background:#f4f4f4}
#load-status{color:#888;font-size:11px}"""

JS = """<script>
function checkLoads(){
  const imgs=[...document.images], auds=[...document.querySelectorAll('audio')];
  const st={images:imgs.length, images_ok:imgs.filter(i=>i.complete&&i.naturalWidth>0).length,
            audio:auds.length, audio_ok:auds.filter(a=>a.readyState>=1&&a.duration>0).length};
  const el=document.getElementById('load-status'); el.textContent=JSON.stringify(st);
  el.dataset.done=(st.images_ok===st.images&&st.audio_ok===st.audio)?'yes':'no';
}
document.querySelectorAll('audio').forEach(a=>{a.addEventListener('loadedmetadata',checkLoads);a.addEventListener('error',checkLoads);});
window.addEventListener('load',checkLoads);
</script>"""


def render_html(results: dict, max_clips: int) -> str:
    e = html.escape
    model = results.get("model", {})
    by = {(r["clip"], r["codec"]): r for r in results["rows"]}
    rows = summary_rows(results["summary"])
    families = {s["codec"]: s["family"] for s in results["summary"]}
    seconds = sum(c["duration_s"] for c in results["clips"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>audiocodec evaluation</title><style>{CSS}</style></head><body>",
             "<h1>audiocodec evaluation</h1>",
             f"<p>{len(results['clips'])} clips, {seconds:.1f} s of audio; model <code>{e(str(model.get('model_id', '?')))}</code> "
             f"({e(str(model.get('weights', '?')))}, {e(str(model.get('steps', '?')))} training steps); {e(results.get('created', ''))}.</p>",
             "<h2>Rate&ndash;distortion</h2><img src='rd.png' alt='rate-distortion plot' style='max-width:100%'>",
             "<p><b>actual kbps</b> = codec payload bits / seconds of audio, counted from real encoder output: the neural "
             "codec's range-coded chunks (without the 40-byte .acdc header and 12-byte chunk headers), Opus packets "
             "(without Ogg pages and the two header packets), Codec2's headerless bit file, the PCA codec's packed indices. "
             "<b>file kbps</b> counts the whole file. Metrics are means over clips (PESQ skips clips where it finds no speech), "
             "computed after removing each codec's constant delay (<b>delay ms</b>: 0 by construction for the neural codec; "
             "for the others estimated on the codec's first clips from the log-mel envelope, refined on the waveform; the players play the decoder output as is); "
             "RTF = (encode + decode time) / audio time in this process (Opus and Codec2 include starting their programs).</p>",
             "<h2>Summary</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>"]
    for r in rows[1:]:
        parts.append(f"<tr class='{e(families[r[0]])}'>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
    parts.append("</table><p>The same numbers: <a href='results.json'>results.json</a>, <a href='results.csv'>results.csv</a> "
                 "(one row per clip and codec).</p>")
    shown = results["clips"][:max_clips]
    if shown:
        parts.append(f"<h2>Listen and look ({len(shown)} of {len(results['clips'])} clips)</h2>")
    for clip in shown:
        name = clip["name"]
        base = f"clips/{name}"
        parts.append(f"<h3>{e(name)} ({clip['duration_s']:.1f} s)</h3><div class='grid'>")
        cards = [("original", "original", None)] + [(c, c, by.get((name, c))) for c in results["codecs"]]
        for label, stem, r in cards:
            info = "" if r is None else (f" &middot; {r['kbps']:.2f} kbps &middot; PESQ {_fmt(r['pesq_wb'])} "
                                         f"&middot; STOI {_fmt(r['stoi'], 3)}")
            parts.append(f"<div class='card'><b>{e(label)}</b>{info}<img src='{e(base)}/{e(stem)}.png' alt='{e(label)} spectrogram'>"
                         f"<audio controls preload='metadata' src='{e(base)}/{e(stem)}.wav'></audio></div>")
        parts.append("</div>")
    parts.append("<pre id='load-status'>not checked</pre>" + JS + "</body></html>")
    return "\n".join(parts)
