"""The report's ``index.html``: R-D plot, summary table, an A/B listening table (the original beside this
codec and Opus at the same bitrates) and per-clip cards with spectrograms and players for every codec.

Self-contained: images and audio are files of the report folder (``rd.png``, ``clips/<clip>/<codec>.{png,wav}``)
linked by relative paths, so the folder works offline, copied anywhere. A small script at the end records
whether every image decoded and every audio element loaded its metadata into ``<pre id="load-status">``
(used by the browser test).
"""
from __future__ import annotations

import html

from . import metrics as M
from .tables import describe_model, fmt, summary_rows

AB_CLIPS = 3  # clips in the A/B listening table (of those with players)
AB_COLUMNS = (("neural", "this codec"), ("hybrid", "this codec, hybrid"), ("opus", "Opus"))

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.neural td{background:#fff3f0}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;padding:6px;width:350px;font-size:12px}
.card img{width:100%;display:block}.card audio{width:100%;height:32px}code{background:#f4f4f4}
table.ab td,table.ab th{vertical-align:top;text-align:left}table.ab .card{border:0;padding:0;width:240px}
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

e = html.escape


def _card(clip: str, stem: str, row: dict | None, label: str | None = None) -> str:
    """A spectrogram and a player of ``clips/<clip>/<stem>``, with the codec's measured bitrate and scores."""
    base = f"clips/{clip}/{stem}"
    info = "" if row is None else (f" &middot; {row['kbps']:.2f} kbps &middot; PESQ {fmt(row.get('pesq_wb'))} "
                                   f"&middot; ViSQOL {fmt(row.get('visqol'))} &middot; STOI {fmt(row.get('stoi'), 3)}")
    return (f"<div class='card'><b>{e(label or stem)}</b>{info}<img src='{e(base)}.png' alt='{e(stem)} spectrogram'>"
            f"<audio controls preload='metadata' src='{e(base)}.wav'></audio></div>")


def ab_table(summary: list[dict]) -> list[tuple[float, list[str | None]]]:
    """The A/B grid: for each bitrate of this codec (plain or hybrid), ascending, the codec of each
    ``AB_COLUMNS`` family at that nominal bitrate (None where the run has none)."""
    by = {(s["family"], s["nominal_kbps"]): s["codec"] for s in summary}
    rates = sorted({s["nominal_kbps"] for s in summary if s["family"] in ("neural", "hybrid")})
    return [(k, [by.get((family, k)) for family, _ in AB_COLUMNS]) for k in rates]


def ab_section(results: dict, clips: list[dict]) -> list[str]:
    """A/B listening: per clip, the original beside this codec (plain and hybrid) and Opus at each bitrate."""
    grid = ab_table(results["summary"])
    if not grid or not clips:
        return []
    by = {(r["clip"], r["codec"]): r for r in results["rows"]}
    parts = ["<h2 id='ab'>A/B listening</h2><p>The same clips through this codec and through Opus at the same "
             "nominal bitrate, side by side with the original (a blank cell: no such mode in this run; Opus goes no "
             "lower than 6 kbps).</p>"]
    for clip in clips:
        name = clip["name"]
        parts.append(f"<h3>{e(name)} ({clip['duration_s']:.1f} s)</h3><table class='ab'><tr><th>kbps</th><th>original</th>"
                     + "".join(f"<th>{e(label)}</th>" for _, label in AB_COLUMNS) + "</tr>")
        for i, (kbps, codecs) in enumerate(grid):
            original = f"<td rowspan='{len(grid)}'>{_card(name, 'original', None)}</td>" if i == 0 else ""
            cells = "".join(f"<td>{_card(name, c, by.get((name, c))) if c else ''}</td>" for c in codecs)
            parts.append(f"<tr><td>{kbps:g}</td>{original}{cells}</tr>")
        parts.append("</table>")
    return parts


def _header(results: dict) -> list[str]:
    seconds = sum(c["duration_s"] for c in results["clips"])
    return [f"<!doctype html><html><head><meta charset='utf-8'><title>audiocodec evaluation</title><style>{CSS}</style></head><body>",
            "<h1>audiocodec evaluation</h1>",
            f"<p>{len(results['clips'])} clips, {seconds:.1f} s of audio; {e(describe_model(results.get('model', {})))}; "
            f"{e(results.get('created', ''))}.</p>",
            "<h2>Rate&ndash;distortion</h2><img src='rd.png' alt='rate-distortion plot' style='max-width:100%'>",
            "<p><b>actual kbps</b> = codec payload bits / seconds of audio, counted from real encoder output: the neural "
            "codec's entropy-coded chunks (without the .acdc header and 12-byte chunk headers), Opus packets "
            "(without Ogg pages and the two header packets), Codec2's headerless bit file, the PCA codec's packed indices. "
            "<b>file kbps</b> counts the whole file. Metrics are means over clips (PESQ and ViSQOL skip clips where they find "
            "no speech; ViSQOL is v3 in speech mode with its lattice MOS mapper, which scores clean speech against itself "
            "about 4 to 4.7), computed after removing each codec's constant delay (<b>delay ms</b>: 0 by construction for "
            "the neural codec; for the others estimated on the codec's first clips from the log-mel envelope, refined on "
            "the waveform; the players play the decoder output as is); RTF = (encode + decode time) / audio time in this "
            "process (Opus and Codec2 include starting their programs).</p>"]


def entropy_section(told: dict | None) -> list[str]:
    """What the entropy coder's context model learned (``entropy.story``), if the product has one."""
    if not told:
        return []
    pct = lambda b, f: f"{b:.1f} ({100 * (1 - b / f):.0f} % fewer)"  # noqa: E731
    rows = "".join(f"<tr><td>{m['kbps']:g} kbps</td><td>{m['fixed']}</td><td>{pct(m['tables'], m['fixed'])}</td>"
                   f"<td>{pct(m['start'], m['fixed'])}</td><td>{pct(m['context'], m['fixed'])}</td></tr>"
                   for m in told["modes"])
    return ["<h2>What the entropy coder learned</h2>",
            f"<p>Context model {e(told['context_id'])}, on the first {told['frames']} frames of these clips, each coded "
            "from its start as a file. Each RVQ code alone is nearly uniform, so a table per stage saves little; the "
            "context model predicts each code from the codes of the frames before it and the rows below it in the "
            "same frame. Bits per frame (the cross-entropy, what the range coder spends):</p>",
            "<table><tr><th>mode</th><th>fixed-rate</th><th>per-stage tables</th><th>context, no previous frame</th>"
            f"<th>context</th></tr>{rows}</table>",
            "<img src='entropy.png' alt='bits per code by row' style='max-width:100%'>",
            "<p>Without the previous frame (a packet of one frame), only the rows below help: stage 1 leans on stage 0. "
            "With it the pitch and the first stages become far cheaper: speech changes slowly from one 20 ms frame to "
            "the next. The higher stages, which code the finest residual, stay above 8 bits.</p>"]


def render_html(results: dict, max_clips: int) -> str:
    """The whole page for an ``evaluate`` result whose first ``max_clips`` clips have media in ``clips/``."""
    by = {(r["clip"], r["codec"]): r for r in results["rows"]}
    rows = summary_rows(results["summary"], results.get("metrics", M.METRICS))
    families = {s["codec"]: s["family"] for s in results["summary"]}
    parts = _header(results) + ["<h2>Summary</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>"]
    for r in rows[1:]:
        parts.append(f"<tr class='{e(families[r[0]])}'>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
    parts.append("</table><p>The same numbers: <a href='results.json'>results.json</a>, <a href='results.csv'>results.csv</a> "
                 "(one row per clip and codec).</p>")
    shown = results["clips"][:max_clips]
    parts += ab_section(results, shown[:AB_CLIPS])
    parts += entropy_section(results.get("entropy"))
    if shown:
        parts.append(f"<h2>Listen and look ({len(shown)} of {len(results['clips'])} clips)</h2>")
    for clip in shown:
        name = clip["name"]
        parts.append(f"<h3>{e(name)} ({clip['duration_s']:.1f} s)</h3><div class='grid'>")
        parts += [_card(name, "original", None)] + [_card(name, c, by.get((name, c))) for c in results["codecs"]]
        parts.append("</div>")
    parts.append("<pre id='load-status'>not checked</pre>" + JS + "</body></html>")
    return "\n".join(parts)
