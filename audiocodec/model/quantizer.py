"""Residual vector quantization (RVQ) with low-dimensional codebooks.

Each stage projects the residual (latent_dim) down to ``codebook_dim`` (8), picks the nearest of
``codebook_size`` (1024) code vectors, and projects the code back up. The next stage quantizes what is
left. One stage costs log2(1024) = 10 bits per 20 ms frame = 0.5 kbps.

Two kinds of stage (``gain``):

- ``gain=True``: the code vectors keep their length and the nearest is found by Euclidean distance, so
  each stage removes a part of the residual and the next one refines what is left: more stages, finer
  latents. A latent loss trains the projections so that projecting down and back up reproduces the
  residual.
- ``gain=False`` (the first models, kept for their files): the projected residual and the codes are unit vectors
  (cosine similarity, as in DAC's look-up). Then every stage adds a vector of about the same length
  whatever is left, the residual stops shrinking after a few stages (measured: 80 % of the latent's energy
  is still there after 9 stages, and it grows again after), and 12 kbps sounded barely better than 1.5.

Codebooks are learned by exponential moving averages of the vectors assigned to each code (no gradient),
codes that fall out of use are restarted on random current vectors, and the first training batch seeds the
codebooks by k-means (with ``gain``, after pointing each stage's projection at the principal axes of its
residual: projections learned for unit codes saw 2-6 % of what was left from stage 4 on). Training uses
quantizer dropout: each clip in a batch keeps a random number of stages, so one model serves every bitrate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class QuantizerOutput:
    z_q: torch.Tensor          # (B, latent_dim, T) quantized latents
    codes: torch.Tensor        # (B, n_q, T) int64 code indices
    commit_loss: torch.Tensor  # scalar, mean over active stages


def kmeans(x: torch.Tensor, k: int, iters: int = 10, spherical: bool = True, generator=None) -> torch.Tensor:
    """x (N, D) -> (k, D) centroids: unit vectors by cosine similarity (``spherical``, x unit vectors too) or
    means by Euclidean distance. With N < k, centroids repeat samples."""
    idx = torch.randint(0, x.shape[0], (k,), generator=generator, device=x.device) if x.shape[0] < k else \
        torch.randperm(x.shape[0], generator=generator, device=x.device)[:k]
    c = x[idx].clone()
    if x.shape[0] < k:
        c = c + 0.01 * torch.randn_like(c) * c.norm(dim=-1, keepdim=True)
        return F.normalize(c, dim=-1) if spherical else c
    for _ in range(iters):
        assign = (x @ c.T).argmax(-1) if spherical else nearest_euclidean(x, c)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        means = F.normalize(sums, dim=-1) if spherical else sums / counts.clamp(min=1)[:, None]
        c = torch.where(counts[:, None] > 0, means, c)
    return c


def nearest_euclidean(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Index of the nearest row of c (K, D) for each row of x (..., D): argmin |x - c|^2."""
    return (x @ c.T - 0.5 * c.pow(2).sum(-1)).argmax(-1)


class VectorQuantizer(nn.Module):
    """One RVQ stage. residual (B, T, latent_dim) -> (quantized (B, T, latent_dim), codes (B, T), commit (B, T)).

    ``commit`` is the distance of the projected residual to its code and, with ``gain``, plus the error of
    the stage's latent-space output against the residual, each relative to the batch's mean energy."""

    def __init__(self, latent_dim: int, codebook_size: int = 1024, codebook_dim: int = 8, decay: float = 0.99,
                 gain: bool = False):
        super().__init__()
        self.size, self.decay, self.gain = codebook_size, decay, gain
        self.proj_in = nn.Linear(latent_dim, codebook_dim)
        self.proj_out = nn.Linear(codebook_dim, latent_dim)
        nn.init.zeros_(self.proj_in.bias)
        self.register_buffer("codebook", F.normalize(torch.randn(codebook_size, codebook_dim), dim=-1))
        self.register_buffer("ema_sum", self.codebook.clone(), persistent=False)
        self.register_buffer("ema_count", torch.ones(codebook_size), persistent=False)
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool), persistent=False)

    @torch.no_grad()
    def seed(self, r: torch.Tensor) -> None:
        """Initialise the codebook from residual vectors r (N, latent_dim) by k-means. With ``gain`` the stage
        first looks along the residual's principal axes: proj_in maps onto the top ``codebook_dim`` of them
        and proj_out back (its transpose, plus the mean), so each stage starts on the directions where most
        of what is left lies (projections inherited from another model may see almost none of it)."""
        if self.gain:
            mean = r.mean(0)
            axes = torch.linalg.eigh(torch.cov((r - mean).T))[1][:, -self.proj_in.out_features:].T  # (dim, latent)
            self.proj_in.weight.copy_(axes), self.proj_in.bias.copy_(-axes @ mean)
            self.proj_out.weight.copy_(axes.T), self.proj_out.bias.copy_(mean)
        x = self.project(r)
        self.codebook.copy_(kmeans(x, self.size, spherical=not self.gain))
        self.ema_count.fill_(x.shape[0] / self.size)
        self.ema_sum.copy_(self.codebook * (self.ema_count[:, None] if self.gain else 1))
        self.initialized.fill_(True)

    def project(self, r: torch.Tensor) -> torch.Tensor:
        e = self.proj_in(r)
        return e if self.gain else F.normalize(e, dim=-1)

    def nearest(self, e: torch.Tensor) -> torch.Tensor:
        return nearest_euclidean(e, self.codebook) if self.gain else (e @ self.codebook.T).argmax(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.codebook[codes])

    def forward(self, r: torch.Tensor, active: torch.Tensor):
        if self.training and not bool(self.initialized) and bool(active.any()):
            self.seed(r.detach()[active])
        e = self.project(r)
        if self.training:
            self._learn(e.detach(), active)
        codes = self.nearest(e)
        q = self.codebook[codes]
        commit = (e - q).pow(2).sum(-1)
        q = self.proj_out(e + (q - e).detach())  # straight-through: forward uses the code, backward flows into e
        if self.gain:  # relative errors: of e to its code, and of the stage's output to the residual it quantizes
            target = r.detach()
            commit = commit / e.detach().pow(2).sum(-1).mean().clamp(min=1e-8) + \
                (target - q).pow(2).sum(-1) / target.pow(2).sum(-1).mean().clamp(min=1e-8)
        return q, codes, commit

    @torch.no_grad()
    def _learn(self, e: torch.Tensor, active: torch.Tensor) -> None:
        x = e[active]  # (N, D) vectors of the clips that use this stage
        if x.shape[0] == 0:
            return
        codes = self.nearest(x)
        counts = torch.bincount(codes, minlength=self.size).to(x.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, x)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # restart codes that are almost never chosen on random vectors of this batch
        dead = self.ema_count < 0.03 * x.shape[0] / self.size
        n_dead = int(dead.sum())
        if n_dead:
            pick = x[torch.randint(0, x.shape[0], (n_dead,), device=x.device)]
            self.ema_count[dead] = x.shape[0] / self.size
            self.ema_sum[dead] = pick * (x.shape[0] / self.size if self.gain else 1)
        if self.gain:
            self.codebook.copy_(self.ema_sum / self.ema_count.clamp(min=1e-6)[:, None])
        else:
            self.codebook.copy_(F.normalize(self.ema_sum, dim=-1))


class ResidualVQ(nn.Module):
    """Stack of VectorQuantizer stages; ``n_q`` stages are used (per clip during training).

    Every method takes the latent as ``z`` plus an optional ``late`` part (same shape) that joins the residual
    just before stage ``join``: the stages before it never see it. With ``join`` 3 the encoder's spectral
    branch reaches only the stages above 1.5 kbps, so the first three keep quantizing the latent they were
    trained on (``join`` 0: ``late`` is simply added to ``z``)."""

    def __init__(self, latent_dim: int = 128, n_codebooks: int = 24, codebook_size: int = 1024, codebook_dim: int = 8,
                 gain: bool = False, join: int = 0):
        super().__init__()
        self.n_codebooks, self.codebook_size, self.join = n_codebooks, codebook_size, join
        self.stages = nn.ModuleList(VectorQuantizer(latent_dim, codebook_size, codebook_dim, gain=gain)
                                    for _ in range(n_codebooks))

    def _join(self, r: torch.Tensor, late: torch.Tensor | None, i: int) -> torch.Tensor:
        """The residual (B, T, latent_dim) before stage ``i``, with ``late`` (B, latent_dim, T) added at ``join``."""
        return r + late.transpose(1, 2) if late is not None and i == self.join else r

    def forward(self, z: torch.Tensor, n_q: torch.Tensor, late: torch.Tensor | None = None) -> QuantizerOutput:
        """z (B, latent_dim, T); n_q (B,) number of stages kept per clip; late: see the class. In float32 also
        under autocast (mixed-precision training): the code choice and the codebooks' EMA need it."""
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z.float(), n_q, None if late is None else late.float())

    def _forward(self, z: torch.Tensor, n_q: torch.Tensor, late: torch.Tensor | None) -> QuantizerOutput:
        r = z.transpose(1, 2)
        b, t, _ = r.shape
        z_q = torch.zeros_like(r)
        codes, commits = [], []
        for i, stage in enumerate(self.stages):
            keep = (n_q > i)
            if not bool(keep.any()):
                break
            r = self._join(r, late, i)
            active = keep[:, None].expand(b, t)
            q, c, commit = stage(r, active)
            q = q * keep[:, None, None]
            z_q = z_q + q
            r = r - q
            codes.append(c)
            commits.append((commit * keep[:, None]).sum() / active.sum())
        return QuantizerOutput(z_q.transpose(1, 2), torch.stack(codes, 1), torch.stack(commits).mean())

    # the training interface: the codebooks' EMA state is not in the state dict (the weights ship without it)

    @property
    def seeded(self) -> bool:
        """Whether every stage's codebook has been seeded (``VectorQuantizer.seed``) or loaded as trained."""
        return all(bool(stage.initialized) for stage in self.stages)

    def mark_trained(self) -> None:
        """The codebooks were loaded from trained weights: no stage seeds itself on its first batch."""
        for stage in self.stages:
            stage.initialized.fill_(True)

    def ema_state(self) -> list[dict[str, torch.Tensor]]:
        """Each stage's EMA of the vectors assigned to its codes: [{"sum": (size, dim), "count": (size,)}]."""
        return [{"sum": stage.ema_sum, "count": stage.ema_count} for stage in self.stages]

    @torch.no_grad()
    def load_ema_state(self, state: list[dict[str, torch.Tensor]]) -> None:
        """Resume the codebooks' learning from ``ema_state``'s list."""
        for stage, st in zip(self.stages, state):
            stage.ema_sum.copy_(st["sum"]), stage.ema_count.copy_(st["count"])
        self.mark_trained()

    @torch.no_grad()
    def restart_ema(self, seeded: bool = True) -> None:
        """Start the codebooks' EMA afresh from their current vectors (weights loaded without an EMA state);
        ``seeded`` False makes every stage seed itself again on its first training batch."""
        for stage in self.stages:
            stage.ema_sum.copy_(stage.codebook), stage.initialized.fill_(seeded)

    @torch.no_grad()
    def reseed(self, z: torch.Tensor, first: int = 0, late: torch.Tensor | None = None) -> None:
        """Seed stages ``first``.. afresh (``VectorQuantizer.seed``), in order, on the residuals of latents
        z (B, latent_dim, T) left by the stages before them. Training moves the encoder under the stages,
        and their learned projections do not follow: after 13,000 steps the latent error after 12 stages
        had grown to 2.8 %, and reseeding stages 4-24 brought it to 0.2 %. (Reseeding the first stages
        too cut the error after 3 stages from 11 % to 2 %, yet PESQ at 1.5 kbps fell, from 1.89 to 1.75-1.81
        over 2,000 steps: the learned projections of those stages keep what is heard, not the most energy.)"""
        r = z.transpose(1, 2)
        for i, stage in enumerate(self.stages):
            r = self._join(r, late, i)
            if i >= first:
                stage.seed(r.reshape(-1, r.shape[-1]))
            r = r - stage.lookup(stage.nearest(stage.project(r)))

    @torch.no_grad()
    def encode(self, z: torch.Tensor, n_q: int, late: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim, T), late: see the class -> codes (B, n_q, T)."""
        r = z.transpose(1, 2)
        codes = []
        for i, stage in enumerate(self.stages[:n_q]):
            r = self._join(r, late, i)
            c = stage.nearest(stage.project(r))
            r = r - stage.lookup(c)
            codes.append(c)
        return torch.stack(codes, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, n_q, T) -> quantized latents (B, latent_dim, T)."""
        z = sum(stage.lookup(codes[:, i]) for i, stage in enumerate(self.stages[: codes.shape[1]]))
        return z.transpose(1, 2)
