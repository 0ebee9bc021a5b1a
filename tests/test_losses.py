"""The training losses and discriminators (audiocodec/train/)."""
import numpy as np
import pytest
import torch

from audiocodec.train.balancer import Balancer
from audiocodec.train.discriminators import Discriminators, discriminator_loss, generator_losses
from audiocodec.train.losses import CompressedMagnitudeLoss, MultiScaleMelLoss


@pytest.fixture(scope="module")
def clip(speech):
    return torch.from_numpy(np.ascontiguousarray(speech[:48000], dtype=np.float32))


def test_compressed_magnitude_loss_weighs_loud_bins(clip):
    """Zero for identical signals, growing with added noise; the same noise 40 dB quieter costs over ten
    times less (the power law weighs bins by their loudness)."""
    loss = CompressedMagnitudeLoss()
    x = clip[None, None]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert loss(x, x).item() < 1e-6
    costs = [loss(x + level * noise, x).item() for level in (1e-4, 1e-3, 1e-2)]
    assert costs[0] < costs[1] < costs[2] and costs[0] < 0.1 * costs[2]


def test_mel_loss_is_zero_on_the_input_and_grows_with_noise(clip):
    loss = MultiScaleMelLoss()
    x = clip[None, None, :16000]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert loss(x, x).item() == 0.0
    assert 0 < loss(x + 1e-3 * noise, x).item() < loss(x + 1e-2 * noise, x).item()


def test_discriminator_losses_have_gradients():
    """Every sub-discriminator (five periods, three STFT scales) judges the clip and passes a gradient back."""
    g = torch.Generator().manual_seed(0)
    disc = Discriminators(width=4)
    real = 0.1 * torch.randn(2, 1, 8001, generator=g)  # not a whole number of any period
    fake = (0.1 * torch.randn(2, 1, 8001, generator=g)).requires_grad_()
    out = disc(fake)
    assert len(out) == 8 and all(torch.isfinite(logits).all() and len(feats) == 5 for logits, feats in out)
    d = discriminator_loss(disc(real), disc(fake.detach()))
    adv, fm = generator_losses(disc(real), disc(fake))
    (adv + fm).backward()
    assert d.item() > 0 and fm.item() > 0 and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0


def test_balancer_scales_each_gradient_to_its_ratio_of_the_base_norm():
    """Whatever a loss's own scale, its gradient at the output arrives at its ratio of the base loss's norm;
    a ratio of zero leaves the base gradient alone."""
    g = torch.Generator().manual_seed(0)
    out = torch.randn(4, 1, 100, generator=g).requires_grad_()
    target = torch.randn(4, 1, 100, generator=g)
    base = ((out - target) ** 2).sum()
    loud, quiet = 1e4 * out.sin().sum(), 1e-4 * out.abs().sum()
    grad, norms = Balancer({"loud": 0.5, "quiet": 2.0}).gradient(base, {"loud": loud, "quiet": quiet}, out)
    g_base = 2 * (out - target).detach()
    per_clip = lambda t: t.flatten(1).norm(dim=1).mean()
    assert abs(norms["base"] - per_clip(g_base).item()) < 1e-3 * norms["base"]
    g_loud, g_quiet = 1e4 * out.detach().cos(), 1e-4 * out.detach().sign()
    want = g_base + 0.5 * per_clip(g_base) / per_clip(g_loud) * g_loud + 2.0 * per_clip(g_base) / per_clip(g_quiet) * g_quiet
    assert torch.allclose(grad, want, rtol=1e-4, atol=1e-4)
    base = ((out - target) ** 2).sum()
    grad, _ = Balancer({"loud": 0.0}).gradient(base, {"loud": 1e4 * out.sin().sum()}, out)
    assert torch.allclose(grad, g_base)


def test_a_balancer_resumes_its_running_averages():
    out = torch.linspace(-1, 1, 50).reshape(1, 1, 50).requires_grad_()
    first = Balancer({"adv": 0.5})
    for k in (1.0, 3.0):
        first.gradient((k * out ** 2).sum(), {"adv": out.sin().sum()}, out)
    again = Balancer({"adv": 0.5})
    again.load_state_dict(first.state_dict())
    step = lambda b: b.gradient((2.0 * out ** 2).sum(), {"adv": out.sin().sum()}, out)[1]
    assert step(again) == step(first) != step(Balancer({"adv": 0.5}))
