"""`audiocodec evaluate` / `encode-latents` end to end, the benchmark script, and the report in a real browser."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from audiocodec.cli import main

from .conftest import ROOT, SAMPLES

CLIPS = [os.path.join(SAMPLES, "command_bed.wav"), os.path.join(SAMPLES, "speech_male.wav")]
CHROMIUM = "/usr/bin/chromium"
NO_VISQOL = "pesq_wb,stoi,estoi,si_sdr,mel_distance"  # ViSQOL is scored on one short clip only (test_visqol_in_every_output)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    assert main(["evaluate", *CLIPS, "--bitrates", "1.5,6", "--against", "hybrid,opus,codec2,pca", "--metrics", NO_VISQOL,
                 "--report", out, "-q"]) == 0
    return out


def test_evaluate_writes_consistent_json_csv_html(report):
    res = json.load(open(os.path.join(report, "results.json")))
    names = res["codecs"]
    assert names[:4] == ["neural-1.5", "neural-6", "hybrid-6", "hybrid-12"] and "pca-1.5" in names and "pca-6" in names
    if shutil.which("opusenc"):
        assert "opus-6" in names and "opus-16" in names
    if shutil.which("c2enc"):
        assert "codec2-3.2" in names and "codec2-1.2" in names
    assert [c["name"] for c in res["clips"]] == ["command_bed", "speech_male"]
    assert len(res["rows"]) == 2 * len(names)
    for r in res["rows"]:
        assert r["payload_bytes"] > 0 and r["file_bytes"] >= r["payload_bytes"]
        assert r["kbps"] == pytest.approx(8 * r["payload_bytes"] / r["duration_s"] / 1000)
        assert 0 <= r["stoi"] <= 1 and np.isfinite(r["si_sdr"]) and r["mel_distance"] >= 0
        assert 0 <= r["delay_ms"] <= 100
        if r["family"] in ("opus", "pca"):  # waveform codecs with their delay already compensated
            assert r["delay_ms"] < 1
        if r["family"] == "codec2":
            assert 10 < r["delay_ms"] < 40
        if r["family"] in ("neural", "hybrid"):  # known by construction, not estimated
            assert r["delay_ms"] == 0
    neural = {s["codec"]: s for s in res["summary"] if s["family"] == "neural"}
    # entropy coding never spends more than the fixed rate (plus a byte of range-coder flush per chunk)
    assert neural["neural-1.5"]["kbps"] <= 1.5 * 1.05 and neural["neural-6"]["kbps"] <= 6 * 1.05
    assert neural["neural-1.5"]["kbps"] < neural["neural-6"]["kbps"]
    assert res["model"]["model_id"] and res["model"]["export_step"] > 0  # what the weights' metadata says
    assert res["metrics"] == NO_VISQOL.split(",") and all("visqol" not in r for r in res["rows"])

    rows = list(csv.DictReader(open(os.path.join(report, "results.csv"))))
    assert len(rows) == len(res["rows"]) and float(rows[0]["kbps"]) == pytest.approx(res["rows"][0]["kbps"], rel=1e-5)

    page = open(os.path.join(report, "index.html")).read()
    srcs = re.findall(r"src='([^']+)'", page)
    assert "rd.png" in srcs
    ab, listen = page.split("<h2>Listen and look")
    assert page.count("<audio") - ab.count("<audio") == 2 * (len(names) + 1)
    assert "3000 training steps" not in page and "exported at step" in page
    for src in srcs:  # every image and audio file the page refers to exists
        assert os.path.getsize(os.path.join(report, src)) > 0, src


def test_report_has_an_ab_listening_table(report):
    """Per clip: the original once, then this codec (plain and hybrid) and Opus at each of its bitrates."""
    res = json.load(open(os.path.join(report, "results.json")))
    page = open(os.path.join(report, "index.html")).read()
    ab = page[page.index("<h2 id='ab'>"):page.index("<h2>Listen and look")]
    tables = re.findall(r"<h3>([^ ]+) .*?</h3><table class='ab'>(.*?)</table>", ab, re.S)
    assert [name for name, _ in tables] == [c["name"] for c in res["clips"]]  # both clips (up to page.AB_CLIPS)
    opus = shutil.which("opusenc") is not None
    for name, table in tables:
        players = re.findall(rf"<audio [^>]*src='clips/{name}/([^']+)\.wav'", table)
        expected = ["original", "neural-1.5", "neural-6", "hybrid-6"] + ["opus-6"] * opus + ["hybrid-12"] + ["opus-12"] * opus
        assert sorted(players) == sorted(expected), players
        assert [int(r) if r.isdigit() else float(r) for r in re.findall(r"<tr><td>([0-9.]+)</td>", table)] == [1.5, 6, 12]
        assert table.count("<img ") == len(players)  # each player with its spectrogram


def test_visqol_in_every_output(tmp_path):
    out = tmp_path / "r"
    assert main(["evaluate", CLIPS[0], "--bitrates", "3", "--against", "none", "--metrics", "visqol,pesq_wb",
                 "--report", str(out), "-q"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["metrics"] == ["visqol", "pesq_wb"] and 1.0 <= res["rows"][0]["visqol"] <= 5.0
    assert res["summary"][0]["visqol_n"] == 1
    assert float(next(csv.DictReader(open(out / "results.csv")))["visqol"]) == pytest.approx(res["rows"][0]["visqol"], rel=1e-5)
    assert "<th>ViSQOL</th>" in (out / "index.html").read_text()


def test_evaluate_with_search_says_so_and_searches_only_where_it_helps(tmp_path):
    """--search: 6 kbps is encoded by analysis by synthesis, 1.5 kbps as before, and the report names the steps."""
    plain, searched = tmp_path / "p", tmp_path / "s"
    for out, extra in ((plain, []), (searched, ["--search", "8"])):
        assert main(["evaluate", CLIPS[0], "--bitrates", "1.5,6", "--against", "none", "--metrics", "stoi",
                     "--report", str(out), "-q", *extra]) == 0
    p, s = (json.loads((o / "results.json").read_text()) for o in (plain, searched))
    stoi = {(r["codec"], name): r["stoi"] for name, res in (("p", p), ("s", s)) for r in res["rows"]}
    assert stoi[("neural-1.5", "p")] == stoi[("neural-1.5", "s")] and stoi[("neural-6", "p")] != stoi[("neural-6", "s")]
    assert s["model"]["search"] == 8 and "encoded with 8 steps of search" in (searched / "index.html").read_text()


def test_progress_in_a_log_is_a_line_per_clip(tmp_path):
    """Not a terminal: no tqdm redraws (carriage returns) in a redirected log, one line per clip instead."""
    r = subprocess.run([sys.executable, "-m", "audiocodec", "evaluate", CLIPS[0], CLIPS[0], "--bitrates", "3", "--against", "pca",
                        "--metrics", "stoi", "--report", str(tmp_path / "r")],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and r.stderr.count("evaluated clip") == 2, r.stderr


def test_encode_latents(tmp_path):
    out = str(tmp_path / "lat.npz")
    assert main(["encode-latents", CLIPS[1], out, "--bitrate", "3", "-q"]) == 0
    d = np.load(out)
    from audiocodec.audio import load

    frames = -(-len(load(CLIPS[1])) // 320)
    assert d["latents"].shape == (128, frames) and d["latents"].dtype == np.float32
    assert d["codes"].shape == (6, frames) and 0 <= d["codes"].min() and d["codes"].max() < 1024
    assert float(d["frame_rate"]) == 50.0
    assert main(["encode-latents", CLIPS[1], out, "-q"]) == 1  # exists, no -f


def test_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "r")
    for argv in (["evaluate", str(tmp_path / "missing.wav"), "--report", out],
                 ["evaluate", CLIPS[0], "--bitrates", "5", "--report", out],
                 ["evaluate", CLIPS[0], "--against", "mp3", "--report", out],
                 ["evaluate", str(tmp_path), "--report", out]):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("audiocodec: error:"), err


def test_help_has_examples(capsys):
    for cmd in ("evaluate", "encode-latents"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_benchmark_script(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), CLIPS[0], "--bitrates", "3",
                    "--against", "pca", "--out", str(out)], check=True, env=env, capture_output=True)
    md = (out / "benchmark.md").read_text()
    assert "| neural-3 |" in md and "| pca-3 |" in md and "1 thread" in md and "| ViSQOL |" in md
    assert (out / "rd.png").stat().st_size > 1000
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 2
    again = tmp_path / "again"  # the same run compared with itself, clip by clip: no change
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), CLIPS[0], "--bitrates", "3",
                    "--against", "", "--out", str(again), "--compare", str(out / "results.json")],
                   check=True, env=env, capture_output=True)
    assert re.search(r"\| neural-3 \| 1 \| [0-9.]+ \(\+0\.000 ± nan\)", (again / "benchmark.md").read_text())
    assert (again / "rd.png").stat().st_size > 1000


def test_the_rd_plot_draws_an_earlier_run_of_this_codec_beside(tmp_path, monkeypatch):
    import matplotlib.axes

    from audiocodec.evaluation.plots import rd_plot

    drawn = []
    real = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: drawn.append((k["label"], k.get("ls", "-"))) or real(self, *a, **k))
    now = [{"family": "neural", "kbps": 5.6, "pesq_wb": 2.6}, {"family": "opus", "kbps": 5.1, "pesq_wb": 2.3}]
    then = [{"family": "neural", "kbps": 4.7, "pesq_wb": 2.3}, {"family": "opus", "kbps": 5.1, "pesq_wb": 2.3}]
    rd_plot(now, str(tmp_path / "rd.png"), metrics=("pesq_wb",), before=then, labels=("search 30", "plain encoder"))
    assert sorted(drawn) == [("Opus", "-"), ("neural (this codec), plain encoder", "--"), ("neural (this codec), search 30", "-")]
    assert (tmp_path / "rd.png").stat().st_size > 1000


@pytest.mark.parametrize("extra, message", [([CLIPS[0]], "give it no clips"), (["--seed", "3"], "--seed does not apply")])
def test_benchmark_held_out_refuses_what_it_would_ignore(extra, message):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--held-out", "1", *extra],
                       capture_output=True, text=True)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr


def test_paired_rows_show_the_change_per_codec():
    from audiocodec.evaluation.tables import paired_rows

    old = {"rows": [{"clip": c, "codec": "neural-6", "pesq_wb": p} for c, p in (("a", 2.0), ("b", 3.0), ("c", 1.0))]}
    new = {"rows": [{"clip": c, "codec": "neural-6", "pesq_wb": p} for c, p in (("a", 2.1), ("b", 3.3), ("d", 9.0))]}
    rows = paired_rows(old, new, metrics=("pesq_wb",))
    assert rows[1] == ["neural-6", "2", "2.700 (+0.200 ± 0.100)"]


def test_versus_rows_give_each_codec_its_lead_clip_by_clip():
    from audiocodec.evaluation.tables import versus_rows

    scores = {"neural-6": (2.0, 3.0, 1.0), "opus-6": (1.5, 3.1, 0.6)}
    res = {"rows": [{"clip": c, "codec": k, "pesq_wb": v[i]} for k, v in scores.items() for i, c in enumerate("abc")]}
    rows = versus_rows(res, [("neural-6", "opus-6"), ("neural-12", "opus-12")], metrics=("pesq_wb",))
    assert rows[1:] == [["neural-6", "opus-6", "2.000 (+0.267 ± 0.186)"]]  # leads 0.5, -0.1, 0.4; no neural-12


def test_source_rows_split_the_clips_by_their_folder():
    from audiocodec.evaluation.tables import source_rows

    clips = [{"name": n, "path": f"/data/test/{src}/spk/{n}.flac"} for n, src in (("a", "read"), ("b", "read"), ("c", "words"))]
    res = {"clips": clips, "rows": [{"clip": n, "codec": "neural-6", "pesq_wb": p} for n, p in (("a", 2.0), ("b", 3.0), ("c", 1.0))]}
    assert source_rows(res) == [["codec", "read (2 clips)", "words (1 clip)"], ["neural-6", "2.50", "1.00"]]


def _chromium(args, user_dir, timeout=60):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_dir}", "--virtual-time-budget=10000"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


def _load_status(dom: str) -> dict:
    m = re.search(r'<pre id="load-status"[^>]*>([^<]*)</pre>', dom)
    assert m, dom[-500:]
    return json.loads(m.group(1))


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium not installed")
def test_report_loads_in_a_browser(report, tmp_path):
    url = "file://" + os.path.join(report, "index.html")
    st = _load_status(_chromium(["--dump-dom", url], tmp_path / "profile").stdout)
    assert st["images"] == st["images_ok"] > 2 and st["audio"] == st["audio_ok"] > 2, st

    shot = tmp_path / "report.png"
    _chromium([f"--screenshot={shot}", "--window-size=1300,1800", url], tmp_path / "profile")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    # the check is real: a page with a missing image and a missing wav reports them
    broken = tmp_path / "broken"
    shutil.copytree(report, broken)
    os.remove(broken / "clips" / "speech_male" / "pca-6.png")
    os.remove(broken / "clips" / "speech_male" / "pca-6.wav")
    st = _load_status(_chromium(["--dump-dom", "file://" + str(broken / "index.html")], tmp_path / "profile").stdout)
    assert st["images_ok"] == st["images"] - 1 and st["audio_ok"] == st["audio"] - 1, st


def test_silence_gives_null_pesq_and_strict_json(tmp_path):
    from audiocodec.output import save

    save(str(tmp_path / "silence.wav"), np.zeros(8000, dtype=np.float32))
    out = tmp_path / "r"
    assert main(["evaluate", str(tmp_path / "silence.wav"), "--bitrates", "1.5", "--against", "pca", "--report", str(out), "-q"]) == 0
    text = (out / "results.json").read_text()
    assert "NaN" not in text
    res = json.loads(text)
    assert all(r["pesq_wb"] is None and r["visqol"] is None for r in res["rows"]) and res["summary"][0]["pesq_wb_n"] == 0
    assert "n/a" in (out / "index.html").read_text()


def test_held_out_blocks_avoid_the_reported_clips_and_each_other(monkeypatch):
    from audiocodec.errors import CodecError
    from audiocodec.evaluation import corpus
    from audiocodec.evaluation.runner import REPORTED_CLIPS, fixed_test_clips, held_out_clips

    monkeypatch.setattr(corpus, "list_clips", lambda split="test": [f"clip{i:03d}.wav" for i in range(300)])
    reported = set(fixed_test_clips(REPORTED_CLIPS))
    blocks = [held_out_clips(100, b) for b in (1, 2)]
    assert all(len(b) == len(set(b)) == 100 and not reported & set(b) for b in blocks)
    assert not set(blocks[0]) & set(blocks[1])
    assert held_out_clips(100, 1) == blocks[0]  # the same clips on every machine
    with pytest.raises(CodecError, match="does not fit"):
        held_out_clips(100, 3)  # 240 unreported clips hold two blocks of 100, not three


def test_probe_rvq_takes_clips_of_any_length(engine, speech, monkeypatch):
    """research/probe_rvq.py on a clip that is not a whole number of 20 ms frames (a refactor once broke that)."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "research"))  # probe_rvq imports its sibling oracles.py
    from tests.test_train import load_script

    out = load_script("probe_rvq", "research").probe(engine.codec, speech[:16000 + 123])
    assert list(out) == ["1.5 kbps", "3 kbps", "6 kbps", "12 kbps", "the latent, unquantized"]
    left = [out[k][0] for k in ["1.5 kbps", "3 kbps", "6 kbps", "12 kbps"]]
    assert left == sorted(left, reverse=True) and 0 < left[-1] < left[0] < 1  # more stages leave out less
    assert all(1.0 <= out[k][1] <= 4.7 for k in out)  # PESQ-WB scores
