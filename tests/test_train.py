"""The training script's schedule, weight average and pitch-coded clips (scripts/train.py; a few steps of a tiny model)."""
import dataclasses
import importlib.util
import math
import os
import sys

import pytest
import torch

from tests.conftest import ROOT


def load_script(name: str, folder: str = "scripts"):
    """<folder>/<name>.py (scripts/ or research/) as a module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, folder, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train():
    return load_script("train")


def test_schedule_warms_up_then_decays(train):
    s = train.Settings(lr=1e-3, warmup=100, steps=1000, min_lr_frac=0.1)
    assert train.lr_at(0, s) == pytest.approx(1e-5)
    assert train.lr_at(99, s) == pytest.approx(1e-3)
    assert train.lr_at(550, s) == pytest.approx(0.55e-3)  # half way down the cosine: (0.1 + 1) / 2
    assert train.lr_at(1000, s) == pytest.approx(1e-4)


def test_schedule_ramps_up_again_from_other_weights(train):
    """Started from other weights at step 500 (a fresh optimizer), the rate climbs back to the schedule's."""
    s = train.Settings(lr=1e-3, warmup=100, steps=1000)
    assert train.lr_at(500, s, ramp_from=500) == pytest.approx(train.lr_at(500, s) / 100)
    assert train.lr_at(549, s, ramp_from=500) == pytest.approx(train.lr_at(549, s) / 2)
    for step in (599, 700, 999):
        assert train.lr_at(step, s, ramp_from=500) == train.lr_at(step, s)


def test_every_option_has_help_from_its_comment(train):
    """--help teaches: each setting's comment (continuation lines joined) is its help text."""
    helps = train.option_help()
    assert set(helps) == {f.name for f in dataclasses.fields(train.Settings)}
    assert helps["steps"] == "total steps of the schedule (resume continues towards it)"
    assert helps["weight_ema"].endswith("--init from a run's .pt starts from its average if it kept one")
    assert "30 %% faster" in helps["latent_cache"]  # argparse formats help with %


def test_crops_start_uniformly_on_the_pitch_grid():
    import numpy as np

    from audiocodec.train.crops import crop_starts
    from audiocodec.train.dataset import F0_HOP

    total = 100000
    starts = crop_starts(20000, 16000, total, np.random.default_rng(0))
    assert (starts % F0_HOP == 0).all() and starts.min() == 0 and starts.max() <= total - 16000
    assert np.array_equal(crop_starts(5, 16000, total, np.random.default_rng(1)),
                          np.random.default_rng(1).integers(0, (total - 16000) // F0_HOP, 5) * F0_HOP)


def test_weight_average_follows_the_live_weights(train):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    model[2].requires_grad_(False)  # frozen parameters are neither averaged nor changed
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = train.WeightAverage(model, decay=0.75)
    with torch.no_grad():
        model[0].weight.add_(4.0)
        model[1].running_mean.fill_(2.0)
    average.update()
    state = average.state_dict()
    assert torch.allclose(state["0.weight"], start["0.weight"] + 1.0)  # a quarter of the way to the new weights
    assert torch.equal(state["0.bias"], start["0.bias"])
    assert torch.equal(state["2.weight"], start["2.weight"])
    assert torch.equal(state["1.running_mean"], torch.full((3,), 2.0))  # buffers are the live model's
    average.update()
    assert torch.allclose(average.state_dict()["0.weight"], start["0.weight"] + 1.75)

    average.restart("0.")  # refitted parameters: the average starts again from them
    assert torch.equal(average.state_dict()["0.weight"], model[0].weight)

    resumed = train.WeightAverage(model, decay=0.75, state=state)  # from a checkpoint's "averaged"
    assert torch.allclose(resumed.state_dict()["0.weight"], start["0.weight"] + 1.0)


def test_sent_pitch_takes_a_row_and_drives_the_excitation(train):
    f0 = torch.tensor([[0.0, 0.0, 100.0, 100.0], [200.0, 200.0, 0.0, 0.0]])
    n_q, teacher, coded, sent = train.as_sent(torch.tensor([3, 12]), f0, 6)
    assert n_q.tolist() == [3, 11] and sent.tolist() == [False, True]
    assert teacher[0].tolist() == [0, 0, 0, 0]                     # 3 rows: no pitch sent, the predicted one
    assert torch.allclose(teacher[1], torch.tensor([200.0, 200.0, 0.0, 0.0]), rtol=0.01)  # 20 ms, 8-bit code
    assert torch.equal(coded, teacher)                              # no teacher forcing: the sent pitch drives it
    harvest = torch.full_like(f0, 150.0)
    _, teacher, coded, _ = train.as_sent(torch.tensor([3, 12]), f0, 6, harvest)
    assert teacher[0].tolist() == [150.0] * 4 and coded[0].tolist() == [0.0] * 4  # the decoder hears only what is sent


def test_validation_sends_the_pitch_of_the_tracker_beside_the_track(train, tmp_path, monkeypatch):
    from audiocodec.model import Codec, CodecConfig
    from audiocodec.model.pitch import PitchTracker

    track = tmp_path / "train-f0.npy"
    assert train.tracker_beside(str(track)) is None and train.tracker_beside("harvest") is None
    torch.save({"tracker": PitchTracker().state_dict()}, tmp_path / "ckpt.pt")
    tracker = train.tracker_beside(str(track))
    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=24, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True)
    model = Codec(cfg)
    model.quantizer.mark_trained()
    clip = (0.1 * torch.randn(16000)).numpy()
    calls, encode = [], Codec.encode
    monkeypatch.setattr(Codec, "encode", lambda self, wav, n_q: calls.append((n_q, self.sends_pitch(n_q))) or encode(self, wav, n_q))
    res = train.evaluate(model, [clip], tracker)
    assert calls[1:] == [(4, False), (12, True), (24, True)]  # after the code-usage pass: 1.5, 6, 12 kbps
    assert {"pesq@1.5", "pesq@6", "stoi@12"} <= set(res) and model.training  # the model itself trains on
    assert model.pitch is None  # the tracker went into a copy


def test_init_from_a_shipped_codec_leaves_its_pitch_tracker_to_train_pitch(train, tmp_path):
    from audiocodec.model import Codec, CodecConfig

    train_pitch = load_script("train_pitch")
    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=24, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True, pitch_coded=True)
    shipped = Codec(cfg)._trained(Codec(cfg).state_dict())
    path = str(tmp_path / "codec.safetensors")
    shipped.save(path, int8=False)
    got_cfg, state, _ = train.initial_weights(path)
    assert not got_cfg.pitch_coded and not any(k.startswith("pitch.") for k in state)
    Codec(got_cfg).load_state_dict(state, strict=True)  # exactly the codec without its tracker
    tracker = train_pitch.initial_tracker(path)
    assert all(torch.allclose(v.float(), shipped.pitch.state_dict()[k].float(), atol=1e-3) for k, v in tracker.items())
    plain = str(tmp_path / "plain.safetensors")
    plain_cfg = dataclasses.replace(cfg, pitch_coded=False)
    Codec(plain_cfg)._trained(Codec(plain_cfg).state_dict()).save(plain)
    with pytest.raises(SystemExit, match="holds no pitch tracker"):
        train_pitch.initial_tracker(plain)


def test_head_fft_carries_the_read_out_over_by_frequency(train):
    """--head-fft: the same weights with another head window; each read-out row lands on the bin of its frequency,
    the codes' side untouched, and a window that Hann x Hann cannot overlap-add flat is refused."""
    from audiocodec.model import Codec, CodecConfig

    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=4, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True)
    state = Codec(cfg).state_dict()
    assert train.with_head_window(cfg, state, 640) == (cfg, state)
    short_cfg, short = train.with_head_window(cfg, state, 480)
    model = Codec(short_cfg)
    model.load_state_dict(short, strict=True)
    assert model.head.n_fft == model.source.n_fft == 480 and short_cfg.n_fft == 640  # the encoder's windows stay
    old, new = state["head.out.bias"].view(3, 321), short["head.out.bias"].view(3, 241)
    assert torch.allclose(new[0, 3], old[0, 4] + math.log(0.75)) and torch.allclose(new[1, 3], old[1, 4])  # 100 Hz
    assert all(torch.equal(short[k], v) for k, v in state.items() if not k.startswith("head.out."))
    with pytest.raises(ValueError, match="three hops"):
        train.with_head_window(cfg, state, 320)


def test_average_checkpoints_mixes_weights_and_refuses_other_architectures():
    avg = load_script("average_checkpoints")
    a = {"averaged": {"w": torch.zeros(3), "n": torch.tensor([1])}, "model": {}}
    b = {"model": {"w": torch.ones(3), "n": torch.tensor([5])}}  # no weight average: its live weights count
    out = avg.mix([a, b], [0.25, 0.75])
    assert torch.allclose(out["w"], torch.full((3,), 0.75)) and out["n"].item() == 5  # counters from the last
    with pytest.raises(ValueError, match="architectures"):
        avg.mix([a, {"model": {"w": torch.ones(4), "n": torch.tensor([5])}}], [0.5, 0.5])


def test_a_packed_run_with_frozen_codes_trains_only_the_decoder_side(train, tmp_path, monkeypatch):
    """--pack (scripts/pack_data.py's file) stands in for the corpus; --freeze-codes leaves the encoder and the
    codebooks as they were; --keep-every keeps step checkpoints; --eval-every 0 never validates."""
    import numpy as np

    from audiocodec.model import Codec, CodecConfig
    from audiocodec.train.pack import Pack, write_pack

    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=24, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True)
    init = Codec(cfg)._trained(Codec(cfg).state_dict())
    init.save(str(tmp_path / "init.safetensors"), int8=False)
    rng = np.random.default_rng(0)
    n = 8 * 16000
    write_pack(str(tmp_path / "pack.npz"), Pack(audio=(rng.standard_normal(n) * 3000).astype(np.int16), offsets=np.array([0, n // 2]),
                                                 f0=np.full(n // 160, 150.0, np.float32), sent_f0=None,
                                                 clips=[np.zeros(16000, np.float32)], tracker=None))
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["train.py", "--out", str(out), "--pack", str(tmp_path / "pack.npz"), "--init",
                                      str(tmp_path / "init.safetensors"), "--init-step", "1", "--steps", "4", "--batch", "2",
                                      "--eval-every", "0", "--keep-every", "2", "--freeze-codes", "true", "--device", "cpu",
                                      "--threads", "1", "--dec-blocks", "1", "--voicing-bands", "1", "--warmup", "1"])
    train.main()
    assert sorted(os.listdir(out)) == ["ckpt.pt", "log.jsonl", "step2.pt", "step4.pt"]
    ck = torch.load(out / "ckpt.pt", map_location="cpu", weights_only=False)
    before = Codec.load(str(tmp_path / "init.safetensors")).state_dict()  # as saved (float16)
    assert ck["step"] == 4
    changed = {k for k, v in ck["model"].items() if not torch.equal(v, before[k])}
    # (a run started from weights resets the EMA sums from the codebooks; the codebooks themselves stay)
    assert changed and not [k for k in changed if k.startswith(("encoder.", "quantizer.")) and not k.endswith("ema_sum")]
    assert any(k.startswith("decoder.") for k in changed)


def test_a_frozen_decoder_leaves_the_receiver_as_it_was(train, tmp_path, monkeypatch):
    """--freeze-decoder: the encoder learns, nothing the receiver runs changes (its codebooks included); with --freeze-codes it
    would train nothing, which is one line."""
    import numpy as np

    from audiocodec.model import Codec, CodecConfig
    from audiocodec.train.pack import Pack, write_pack

    cfg = CodecConfig(enc_channels=(8, 8, 16, 16, 32), enc_hidden=64, latent_dim=16, n_codebooks=24, codebook_size=256,
                      dec_dim=32, dec_hidden=64, dec_blocks=1, pitch_source=True)
    Codec(cfg)._trained(Codec(cfg).state_dict()).save(str(tmp_path / "init.safetensors"), int8=False)
    rng = np.random.default_rng(0)
    n = 8 * 16000
    write_pack(str(tmp_path / "pack.npz"), Pack(audio=(rng.standard_normal(n) * 3000).astype(np.int16), offsets=np.array([0, n // 2]),
                                                 f0=np.full(n // 160, 150.0, np.float32), sent_f0=None,
                                                 clips=[np.zeros(16000, np.float32)], tracker=None))
    args = ["train.py", "--out", str(tmp_path / "run"), "--pack", str(tmp_path / "pack.npz"), "--init",
            str(tmp_path / "init.safetensors"), "--init-step", "1", "--steps", "3", "--batch", "2", "--eval-every", "0",
            "--freeze-decoder", "true", "--device", "cpu", "--threads", "1", "--dec-blocks", "1", "--voicing-bands", "1",
            "--warmup", "1"]
    monkeypatch.setattr(sys, "argv", args)
    train.main()
    ck = torch.load(tmp_path / "run" / "ckpt.pt", map_location="cpu", weights_only=False)
    before = Codec.load(str(tmp_path / "init.safetensors")).state_dict()
    changed = {k for k, v in ck["model"].items() if not torch.equal(v, before[k])}
    assert any(k.startswith("encoder.") for k in changed)
    assert not [k for k in changed if k.startswith(("decoder.", "head.", "source.", "quantizer."))]
    monkeypatch.setattr(sys, "argv", args[:2] + [str(tmp_path / "other")] + args[3:] + ["--freeze-codes", "true"])
    with pytest.raises(SystemExit, match="--freeze-decoder trains the encoder"):
        train.main()
