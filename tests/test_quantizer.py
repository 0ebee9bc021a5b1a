import torch

from audiocodec.model.codec import CodecConfig
from audiocodec.model.quantizer import ResidualVQ, nearest_euclidean


def _latents(n: int = 3000, dim: int = 16, seed: int = 0) -> torch.Tensor:
    """Correlated Gaussian latents (n, dim) whose variance falls off over directions, like an encoder's."""
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(dim, dim, generator=g))[0]
    return (torch.randn(n, dim, generator=g) * torch.logspace(0, -1, dim)) @ basis.T


def _residual_energy(rvq: ResidualVQ, z: torch.Tensor) -> list[float]:
    """Energy left after 1..n stages, relative to z's: decode(encode(z, n)) against z."""
    zb = z.T[None]
    with torch.no_grad():
        return [float((zb - rvq.decode(rvq.encode(zb, n))).pow(2).sum() / zb.pow(2).sum()) for n in range(1, rvq.n_codebooks + 1)]


def _train(rvq: ResidualVQ, z: torch.Tensor, steps: int = 60) -> None:
    torch.manual_seed(0)
    opt = torch.optim.Adam(rvq.parameters(), lr=3e-3)
    n_q = torch.full((1,), rvq.n_codebooks)
    rvq.train()
    for _ in range(steps):
        out = rvq(z.T[None], n_q)
        opt.zero_grad()
        out.commit_loss.backward()
        opt.step()
    rvq.eval()


def test_gain_codes_refine_stage_by_stage():
    """With codes that keep their length, every stage removes part of what the previous ones left."""
    torch.manual_seed(0)
    z = _latents()
    rvq = ResidualVQ(latent_dim=16, n_codebooks=6, codebook_size=64, codebook_dim=4, gain=True)
    _train(rvq, z)
    left = _residual_energy(rvq, z)
    assert all(b < a for a, b in zip(left, left[1:])), left
    assert left[-1] < 0.5 * left[0] and left[-1] < 0.2, left


def test_unit_codes_stop_refining():
    """The first models' unit-length codes add about the same length at every stage, so the residual stops
    shrinking: the reason ``vq_gain`` exists (kept for those models' files)."""
    torch.manual_seed(0)
    z = _latents()
    unit = ResidualVQ(latent_dim=16, n_codebooks=6, codebook_size=64, codebook_dim=4, gain=False)
    gain = ResidualVQ(latent_dim=16, n_codebooks=6, codebook_size=64, codebook_dim=4, gain=True)
    _train(unit, z), _train(gain, z)
    assert _residual_energy(gain, z)[-1] < 0.5 * _residual_energy(unit, z)[-1]


def test_nearest_euclidean_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(200, 8, generator=g), 3 * torch.randn(50, 8, generator=g)
    assert torch.equal(nearest_euclidean(x, c), torch.cdist(x, c).argmin(-1))


def test_old_configs_keep_unit_codes():
    """Weights saved before ``vq_gain`` existed have no such key: they must load with the quantizer they
    were trained with; new configs default to the refining one."""
    assert CodecConfig.from_dict({"dec_blocks": 6}).vq_gain is False
    assert CodecConfig().vq_gain is True
    assert CodecConfig.from_dict({"vq_gain": True}).vq_gain is True


def test_seeding_points_each_stage_at_its_residual():
    """With gain codes, the first training batch points each stage's 8-d projection at the principal axes
    of the residual it quantizes, whatever projection it had before (for example from another model)."""
    torch.manual_seed(0)
    z = _latents(dim=16)
    rvq = ResidualVQ(latent_dim=16, n_codebooks=3, codebook_size=64, codebook_dim=4, gain=True).train()
    r = z.T[None]
    rvq(r, torch.full((1,), 3))
    residual = z
    for stage in rvq.stages:
        basis = torch.linalg.qr(stage.proj_in.weight.detach().T)[0]
        centred = residual - residual.mean(0)
        seen = (centred @ basis).pow(2).sum() / centred.pow(2).sum()
        best = torch.linalg.eigvalsh(torch.cov(centred.T)).flip(0)[:4].sum() / torch.linalg.eigvalsh(torch.cov(centred.T)).sum()
        assert seen > 0.99 * best, (float(seen), float(best))
        with torch.no_grad():
            residual = residual - stage.lookup(stage.nearest(stage.project(residual)))


def test_reseed_follows_a_moved_latent():
    """Fitted to one latent distribution, the stages quantize a rotated one (an encoder that moved on)
    badly; reseeding on the new latents more than halves the error."""
    torch.manual_seed(0)
    z = _latents()
    rvq = ResidualVQ(latent_dim=16, n_codebooks=4, codebook_size=64, codebook_dim=4, gain=True)
    _train(rvq, z, steps=5)
    moved = z @ torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(3)))[0]
    before = _residual_energy(rvq, moved)[-1]
    rvq.reseed(moved.T[None])
    after = _residual_energy(rvq, moved)[-1]
    assert after < 0.5 * before, (before, after)


def test_late_part_reaches_only_the_stages_from_join():
    """A ``late`` latent part joining before stage ``join`` leaves the earlier stages' codes as they were,
    changes the later ones, and at ``join`` 0 is the same as adding it to the latent."""
    torch.manual_seed(0)
    z, late = _latents().T[None], 0.5 * _latents(seed=1).T[None]
    rvq = ResidualVQ(latent_dim=16, n_codebooks=6, codebook_size=64, codebook_dim=4, gain=True, join=3)
    rvq.reseed(z, 0, late)
    rvq.eval()  # no codebook updates while coding
    with torch.no_grad():
        plain, joined = rvq.encode(z, 6), rvq.encode(z, 6, late)
        assert torch.equal(plain[:, :3], joined[:, :3]) and not torch.equal(plain[:, 3:], joined[:, 3:])
        out = rvq(z, torch.full((1,), 6), late)
        assert torch.equal(out.codes, joined)
        rvq.join = 0
        assert torch.equal(rvq.encode(z, 6, late), rvq.encode(z + late, 6))


def test_training_interface_carries_the_codebooks_ema_across_a_resume():
    """ema_state / load_ema_state resume the codebooks' learning; restart_ema starts it from the codebooks;
    a quantizer seeds itself on its first batch unless marked trained."""
    z = _latents(n=500)
    rvq = ResidualVQ(latent_dim=16, n_codebooks=3, codebook_size=32, codebook_dim=4, gain=True)
    assert not rvq.seeded
    _train(rvq, z, steps=3)
    assert rvq.seeded
    saved = [{k: v.clone() for k, v in st.items()} for st in rvq.ema_state()]
    other = ResidualVQ(latent_dim=16, n_codebooks=3, codebook_size=32, codebook_dim=4, gain=True)
    other.load_ema_state(saved)
    assert other.seeded and all(torch.equal(a["sum"], b["sum"]) and torch.equal(a["count"], b["count"])
                                for a, b in zip(other.ema_state(), saved))
    other.restart_ema(seeded=False)
    assert not other.seeded and all(torch.equal(st["sum"], stage.codebook) for st, stage in zip(other.ema_state(), other.stages))
    other.mark_trained()
    assert other.seeded
