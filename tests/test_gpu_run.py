"""The lent-GPU path on CPU, so that it cannot rot while no GPU is there: a tiny Opus pack without pitch tracks,
three steps of scripts/gpu_run.sh (which adds them first), a returned state and tracks within the machine's
limits, and a run that resumes from them."""
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from audiocodec.model import Codec, CodecConfig
from audiocodec.model.pitch import PitchTracker
from audiocodec.train import pitch_tracks
from audiocodec.train.pack import Pack, read_pack, write_pack
from audiocodec.train.state import load_shards, save_shards
from tests.conftest import ROOT
from tests.test_train import load_script

TINY = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=24, codebook_size=256,
                   dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True)
SMALL = ["--batch", "2", "--threads", "1", "--dec-blocks", "1", "--voicing-bands", "1", "--warmup", "1", "--log-every", "1",
         "--disc-width", "4"]


def tone(seconds: float = 6.0) -> np.ndarray:
    """A harmonic tone at 150 Hz, float in [-1, 1]."""
    t = np.arange(round(seconds * 16000)) / 16000
    return 0.3 * sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 10))


@pytest.fixture
def pack(tmp_path) -> str:
    """6 s of a harmonic tone in two clips, one validation clip and a (random) sender tracker, as pack_data.py
    writes them: no pitch tracks."""
    path = str(tmp_path / "pack.npz")
    audio = (tone(6 + 77 / 16000) * 32767).astype(np.int16)  # not a whole number of pitch frames, as a split's end
    write_pack(path, Pack(audio=audio, offsets=np.array([0, 3 * 16000]), f0=None,
                          sent_f0=None, clips=[tone(1).astype(np.float32)], tracker=PitchTracker().state_dict()))
    return path


def test_a_pack_carries_the_audio_as_opus_and_takes_its_pitch_tracks_later(pack, tmp_path, monkeypatch):
    got = read_pack(pack)
    x = tone(6 + 77 / 16000)
    assert got.audio.dtype == np.int16 and len(got.audio) == len(x) and list(got.offsets) == [0, 48000]
    err = got.audio[1000:-1000] / 32768 - x[1000:-1000]
    assert 10 * np.log10(np.mean(x ** 2) / np.mean(err ** 2)) > 15  # lossy, aligned to the sample
    assert got.f0 is None and got.sent_f0 is None and len(got.clips) == 1 and got.tracker is not None

    f0 = np.full(601, 150.0, np.float16)
    np.savez(tmp_path / "tracks.npz", f0=f0, sent_f0=f0)
    before = np.load(pack)["opus000"]
    monkeypatch.setattr(sys, "argv", ["pitch_tracks", pack, "--load", str(tmp_path / "tracks.npz")])
    pitch_tracks.main()
    got = read_pack(pack)
    assert np.array_equal(got.f0, f0) and np.array_equal(got.sent_f0, f0) and np.array_equal(np.load(pack)["opus000"], before)
    assert pitch_tracks.compute(pack) == {}  # nothing left to add


def test_gpu_run_adds_pitch_trains_returns_a_state_within_limits_and_resumes(pack, tmp_path, monkeypatch):
    harvest = importlib.util.find_spec("pyworld") is not None  # the [train] extra; else the tracker's pitch as targets
    Codec(TINY)._trained(Codec(TINY).state_dict()).save(str(tmp_path / "init.safetensors"), int8=False)
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PACK": pack, "RUN": str(tmp_path / "run"), "OMP_NUM_THREADS": "1",
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "TARGETS": "harvest" if harvest else "tracker"}
    done = subprocess.run(["bash", "scripts/gpu_run.sh", "60", "--init", str(tmp_path / "init.safetensors"),
                           "--time-budget", "0", "--steps", "3", *SMALL], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
    assert len(files) <= 8 and max(os.path.getsize(f) for f in files) <= 16 * 2 ** 20
    tracks = np.load(out / "tracks.npz")
    assert tracks["f0"].shape == tracks["sent_f0"].shape == (601,)
    if harvest:  # Harvest of the Opus-decoded tone; the random tracker's pitch is anything
        assert np.median(np.abs(tracks["f0"][20:-20].astype(np.float32) - 150)) < 3
    state = load_shards(str(out / "state"))
    assert state["step"] == 3 and state["opt_g"]["state"] and "averaged" in state

    train = load_script("train")  # resumed here with the discriminators, under bf16 autocast as on CUDA
    monkeypatch.setattr(train.Machine, "autocast", lambda self, s: torch.autocast("cpu", torch.bfloat16))
    monkeypatch.setattr(sys, "argv", ["train.py", "--out", str(tmp_path / "next"), "--resume", str(out / "state"),
                                      "--steps", "5", "--adv-start", "0", "--adv-ramp", "1", "--device", "cpu", "--eval-every", "0", *SMALL])
    train.main()
    ck = torch.load(tmp_path / "next" / "ckpt.pt", map_location="cpu", weights_only=False)
    assert ck["step"] == 5 and ck["settings"]["pack"] == pack and ck["settings"]["pitch_input"]
    assert ck["balancer"]["weight"] > 1 and set(ck["balancer"]["sums"]) >= {"base", "adv"}  # its averages go on from here
    log = [json.loads(line) for line in open(tmp_path / "next" / "log.jsonl")]
    assert [r["step"] for r in log] == [4, 5] and all(np.isfinite(r[k]) for r in log for k in ("d", "mel", "adv", "fm"))


def test_shards_round_trip_a_checkpoint_in_reduced_precision(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 64)).sum().backward()
    opt.step()
    ck = {"model": model.state_dict(), "averaged": model.state_dict(), "opt_g": opt.state_dict(), "opt_d": opt.state_dict(),
          "ema": [{"sum": torch.ones(4, 2), "count": torch.ones(4)}], "step": 7, "best": -1.0, "config": {}, "settings": {"lr": 1e-4},
          "balancer": {"sums": {"base": 2.5, "adv": 0.25}, "weight": 3.0}}
    paths = save_shards(ck, str(tmp_path / "state"), shard_bytes=10_000)
    assert len(paths) > 2
    back = load_shards(str(tmp_path / "state"))
    assert back["step"] == 7 and back["settings"] == {"lr": 1e-4} and torch.equal(back["model"]["weight"], model.weight)
    assert back["balancer"] == ck["balancer"]
    assert back["averaged"]["weight"].dtype == torch.float32
    assert torch.allclose(back["averaged"]["weight"], model.weight, rtol=1e-3, atol=1e-7)     # float16 on the way
    assert torch.equal(back["opt_d"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.allclose(back["opt_g"]["state"][0]["exp_avg_sq"], opt.state_dict()["state"][0]["exp_avg_sq"], rtol=1e-2)
    restored = torch.optim.AdamW(model.parameters())
    restored.load_state_dict(back["opt_g"])
    assert torch.equal(back["ema"][0]["count"], torch.ones(4))


def test_time_budget_fits_the_schedule_to_what_is_left():
    train = load_script("train")
    s = train.Settings(time_budget=100.0)
    run = train.Run(None, None, None, None, step=30)
    now = time.time()
    train.fit_to_budget(s, run, now - 10, (10, now - 2.0), train.Machine("cpu"))  # 0.1 s a step, 90 s left
    assert 30 + 640 <= s.steps <= 30 + 660


def test_two_processes_train_as_one(pack, tmp_path):
    """torchrun's path (DistributedDataParallel, here over gloo on CPU): the lead process alone logs and saves."""
    f0 = np.full(601, 150.0, np.float16)
    pitch_tracks.append(pack, {"f0": f0, "sent_f0": f0})
    Codec(TINY)._trained(Codec(TINY).state_dict()).save(str(tmp_path / "init.safetensors"), int8=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "scripts/train.py", "--out", str(tmp_path / "run"), "--pack", pack, "--device", "cpu",
                           "--init", str(tmp_path / "init.safetensors"), "--init-step", "1", "--steps", "3",
                           "--adv-start", "1", "--adv-ramp", "1", "--eval-every", "0", *SMALL], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    log = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert [r["step"] for r in log] == [2, 3] and "d" in log[0] and "adv" in log[1]  # the balancer across processes
    assert torch.load(tmp_path / "run" / "ckpt.pt", map_location="cpu", weights_only=False)["step"] == 3


def test_pack_data_takes_whole_clips_on_the_pitch_grid():
    pack_data = load_script("pack_data")
    offsets, total = np.array([0, 16050, 40000, 64000]), 80000  # clips of 16050, 23950, 24000, 16000 samples
    assert pack_data.pick_clips(offsets, total, total // 160, 0) == [(0, 101), (100, 250), (250, 400), (400, 500)]
    part = pack_data.pick_clips(offsets, total, total // 160, 0.5 / 60)  # 0.5 s: the first clip of the spread order
    assert len(part) == 1 and part[0] in [(0, 101), (100, 250), (250, 400), (400, 500)]


def test_pitch_tracks_without_pyworld_say_so_in_one_line(pack, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyworld" else real(name, *a))
    with pytest.raises(SystemExit, match="need pyworld"):
        pitch_tracks.compute(pack, targets="harvest")
    assert set(pitch_tracks.compute(pack, targets="tracker")) == {"f0", "sent_f0"}
