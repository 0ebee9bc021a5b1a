"""The training losses and discriminators (audiocodec/train/)."""
import numpy as np
import pytest
import torch

from audiocodec.train.discriminators import MultiResolutionDiscriminator, discriminator_loss, generator_losses
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
    g = torch.Generator().manual_seed(0)
    disc = MultiResolutionDiscriminator()
    real = 0.1 * torch.randn(2, 1, 8000, generator=g)
    fake = (0.1 * torch.randn(2, 1, 8000, generator=g)).requires_grad_()
    d = discriminator_loss(disc(real), disc(fake.detach()))
    adv, fm = generator_losses(disc(real), disc(fake))
    (adv + fm).backward()
    assert d.item() > 0 and fm.item() > 0 and torch.isfinite(fake.grad).all() and fake.grad.abs().sum() > 0
