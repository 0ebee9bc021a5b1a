"""The training losses: the PESQ approximation must agree with the real PESQ-WB and give usable gradients."""
import numpy as np
import pytest
import torch

from audiocodec.perceptual_losses import PesqLoss


@pytest.fixture(scope="module")
def clip(speech):
    return torch.from_numpy(np.ascontiguousarray(speech[:48000], dtype=np.float32))


def test_identical_signals_score_top(clip):
    loss = PesqLoss()(clip[None, None], clip[None, None])
    assert loss.item() < 0.05
    assert PesqLoss.mos(loss).item() > 4.5


def test_tracks_real_pesq_and_orders_noise_levels(clip, rng):
    from pesq import pesq

    ref = clip.numpy()
    pl = PesqLoss()
    ours, real = [], []
    for level in (0.002, 0.01, 0.05):
        deg = (ref + level * rng.standard_normal(len(ref))).astype(np.float32)
        ours.append(PesqLoss.mos(pl(torch.from_numpy(deg)[None, None], clip[None, None])).item())
        real.append(pesq(16000, ref, deg, "wb"))
    assert ours[0] > ours[1] > ours[2]
    assert np.max(np.abs(np.array(ours) - np.array(real))) < 0.35, (ours, real)


def test_gradients_are_finite_even_on_silence(clip):
    x = torch.stack([clip[:16000], torch.zeros(16000)])[:, None]
    y = (x + 0.01 * torch.randn_like(x)).requires_grad_()
    PesqLoss()(y, x).backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_stoi_loss_tracks_pystoi(clip, rng):
    from pystoi import stoi

    from audiocodec.perceptual_losses import StoiLoss

    ref = clip.numpy()
    sl = StoiLoss()
    for level in (0.005, 0.05):
        deg = (ref + level * rng.standard_normal(len(ref))).astype(np.float32)
        ours = 1 - sl(torch.from_numpy(deg)[None, None], clip[None, None]).item()
        assert abs(ours - stoi(ref, deg, 16000)) < 0.05
    y = torch.from_numpy(deg)[None, None].requires_grad_()
    sl(y, clip[None, None]).backward()
    assert torch.isfinite(y.grad).all()


def test_compressed_magnitude_loss_weighs_loud_bins(clip):
    """Zero for identical signals, growing with added noise; the same noise 40 dB quieter costs over ten
    times less (the power law weighs bins by their loudness)."""
    from audiocodec.losses import CompressedMagnitudeLoss

    loss = CompressedMagnitudeLoss()
    x = clip[None, None]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert loss(x, x).item() < 1e-6
    costs = [loss(x + level * noise, x).item() for level in (1e-4, 1e-3, 1e-2)]
    assert costs[0] < costs[1] < costs[2] and costs[0] < 0.1 * costs[2]


def test_compressed_magnitude_loss_can_weigh_added_energy_more(clip):
    """With ``excess`` 3, an output louder than the input costs 3 times what the same error costs at 1; one
    quieter than the input costs the same at both."""
    from audiocodec.losses import CompressedMagnitudeLoss

    x = clip[None, None]
    plain, strict = CompressedMagnitudeLoss(), CompressedMagnitudeLoss(excess=3.0)
    loud, quiet = 1.5 * x, x / 1.5
    assert torch.isclose(strict(loud, x), 3 * plain(loud, x), rtol=1e-4)
    assert torch.isclose(strict(quiet, x), plain(quiet, x), rtol=1e-4)


def test_quiet_mel_loss_sees_only_the_quiet_frames():
    """A clip of loud speech-level noise, then a pause 50 dB down: changing the loud half costs nothing,
    changing the pause costs."""
    from audiocodec.losses import QuietMelLoss

    g = torch.Generator().manual_seed(0)
    loud, pause = 0.3 * torch.randn(8000, generator=g), 0.001 * torch.randn(8000, generator=g)
    x = torch.cat([loud, pause])[None, None]
    loss = QuietMelLoss()
    assert loss(x, x).item() == 0.0
    assert loss(torch.cat([0.5 * loud, pause])[None, None], x).item() < 1e-3  # edge frames hear a little
    assert loss(torch.cat([loud, 2 * pause])[None, None], x).item() > 0.1


def _harmonic(f0: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(16000 * seconds)) / 16000
    return sum(torch.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 25))[None] * 0.1


def test_periodicity_tells_harmonics_from_noise_and_tolerates_a_pitch_off_by_little():
    from audiocodec.losses import PeriodicityLoss

    loss = PeriodicityLoss()
    f0 = torch.full((1, 99), 110.0)
    harm, noise = _harmonic(110.0), torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert loss.periodicity(harm, f0).mean() > 0.95
    assert loss.periodicity(noise, f0).mean() < 0.3
    # a comb 4 % off the tracker's pitch is still a comb; one an octave off is not at this lag
    assert loss.periodicity(_harmonic(114.4), f0).mean() > 0.9
    assert loss.periodicity(_harmonic(55.0), f0 * 0 + 80.0).mean() < 0.5


def test_periodicity_loss_is_zero_on_the_input_and_pulls_noise_towards_harmonics():
    from audiocodec.losses import PeriodicityLoss

    loss = PeriodicityLoss()
    harm = _harmonic(150.0)[None]
    f0 = torch.full((1, 99), 150.0)
    f0[:, :10] = 0.0  # unvoiced frames are left out
    assert loss(harm, harm, f0).item() < 1e-4
    noise = (torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(1)) * 0.1).requires_grad_()
    value = loss(noise, harm, f0)
    value.backward()
    assert value.item() > 0.5 and torch.isfinite(noise.grad).all() and noise.grad.abs().sum() > 0
    assert loss(noise, harm, torch.zeros(1, 99)).item() == 0.0  # nothing voiced: nothing to match
