"""scripts/export.py: a decoder-only fine-tune keeps the codes, so the shipped entropy models carry over."""
import os
import sys

import numpy as np
import soundfile as sf
import torch

from audiocodec.bitstream.context import ContextModel
from audiocodec.model import Codec, default_weights_path
from audiocodec.stream.engine import load_engine
from tests.conftest import ROOT
from tests.test_train import load_script


def corpus(folder, speech) -> str:
    """A corpus of 5 train clips of 0.6 s cut from the sample."""
    rows = ["split,path"]
    for i in range(5):
        sf.write(folder / f"c{i}.wav", speech[i * 9600:(i + 1) * 9600], 16000)
        rows.append(f"train,c{i}.wav")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return str(folder)


def test_a_decoder_fine_tune_takes_the_entropy_models_over(tmp_path, speech, monkeypatch):
    shipped = Codec.load(default_weights_path())
    state = {k: v for k, v in shipped.state_dict().items() if not k.startswith("pitch.")}
    state["decoder.blocks.13.fc2.weight"] = state["decoder.blocks.13.fc2.weight"] * 1.01  # a change of the decoder alone
    config = {**shipped.cfg.__dict__, "pitch_coded": False}
    torch.save({"model": state, "config": config, "step": 7}, tmp_path / "ckpt.pt")
    monkeypatch.syspath_prepend(os.path.join(ROOT, "scripts"))
    export = load_script("export")
    out = str(tmp_path / "codec")
    monkeypatch.setattr(sys, "argv", ["export.py", str(tmp_path / "ckpt.pt"), "--out", out, "--pitch", default_weights_path(),
                                      "--data", corpus(tmp_path, speech)])
    export.main()
    new = Codec.load(out + ".safetensors")
    assert new.model_id != shipped.model_id and new.codes_like(shipped)
    assert new.same_codes_as[0] == shipped.model_id  # so the shipped model's files still decode (Engine.reads)
    ctx, old_ctx = ContextModel.load(out + ".context.npz"), ContextModel.load(default_weights_path().replace(".safetensors", ".context.npz"))
    assert ctx.model_id == new.model_id and ctx.id == old_ctx.id  # the same network, named for the new weights
    with np.load(out + ".entropy.npz") as d, np.load(default_weights_path().replace(".safetensors", ".entropy.npz")) as old:
        assert str(d["model_id"]) == new.model_id and np.array_equal(d["counts"], old["counts"])
    assert load_engine(out + ".safetensors").searched.id == load_engine().searched.id  # the searched codes' model too


def test_codes_like_tells_an_encoder_change():
    shipped = Codec.load(default_weights_path())
    state = shipped.state_dict()
    key = next(k for k in state if k.startswith("encoder.") and k.endswith("weight"))
    state[key] = state[key] + 1e-3
    assert not Codec(shipped.cfg)._trained(state).codes_like(shipped)
    assert Codec(shipped.cfg)._trained(shipped.state_dict()).codes_like(shipped)


def test_weights_only_writes_a_candidate_and_never_strips_the_shipped_files(tmp_path, monkeypatch):
    shipped = Codec.load(default_weights_path())
    state = {k: v for k, v in shipped.state_dict().items() if not k.startswith("pitch.")}
    torch.save({"model": state, "config": {**shipped.cfg.__dict__, "pitch_coded": False}, "step": 3}, tmp_path / "ckpt.pt")
    monkeypatch.syspath_prepend(os.path.join(ROOT, "scripts"))
    export = load_script("export")
    out = str(tmp_path / "cand")
    monkeypatch.setattr(sys, "argv", ["export.py", str(tmp_path / "ckpt.pt"), "--out", out, "--weights-only",
                                      "--pitch", default_weights_path()])
    export.main()
    assert sorted(os.listdir(tmp_path)) == ["cand.safetensors", "ckpt.pt"] and Codec.load(out + ".safetensors").pitch is not None
    monkeypatch.setattr(sys, "argv", ["export.py", str(tmp_path / "ckpt.pt"), "--weights-only"])
    try:
        export.main()
    except SystemExit as exc:
        assert "--weights-only would leave the shipped weights without their entropy models" in str(exc)
    else:
        raise AssertionError("export --weights-only over the shipped weights went ahead")
