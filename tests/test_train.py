"""The training script's schedule, weight average and pitch-coded clips (scripts/train.py; training itself is too slow to test)."""
import importlib.util
import os
import sys

import pytest
import torch

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def train():
    spec = importlib.util.spec_from_file_location("train", os.path.join(ROOT, "scripts", "train.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
    n_q, teacher = train.as_sent(torch.tensor([3, 12]), f0, 6)
    assert n_q.tolist() == [3, 11]
    assert teacher[0].tolist() == [0, 0, 0, 0]                     # 3 rows: no pitch sent, the predicted one
    assert torch.allclose(teacher[1], torch.tensor([200.0, 200.0, 0.0, 0.0]), rtol=0.01)  # 20 ms, 8-bit code
