"""A loss balancer for adversarial training, after EnCodec's: the adversarial and feature-matching losses reach
the generator as gradients at its output whose norms are fixed ratios of the reconstruction loss's gradient
norm, whatever the losses' own scales.

EnCodec normalises every loss's gradient to a share of one total; here the reconstruction gradient (the
log-mel and compressed-magnitude losses, ``train.py``'s weights) keeps its own scale, so the pitch and
commitment losses, which do not pass through the output, keep the balance the codec was trained with, and
a ratio of 0 leaves training exactly as it is without the discriminators. The norms are exponential moving
averages over steps (bias-corrected, so the first steps are right), averaged across processes under torchrun.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


class Balancer:
    def __init__(self, ratios: dict[str, float], decay: float = 0.99, eps: float = 1e-12):
        self.ratios, self.decay, self.eps = ratios, decay, eps
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def _norms(self, grads: dict[str, torch.Tensor]) -> dict[str, float]:
        """Each gradient's norm per clip, averaged over the batch (and the processes), then over steps."""
        names = list(grads)
        now = torch.stack([g.flatten(1).norm(dim=1).mean() for g in grads.values()]).float()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(now)
            now /= dist.get_world_size()
        self.weight = self.decay * self.weight + 1.0
        for k, v in zip(names, now.tolist()):
            self.sums[k] = self.decay * self.sums.get(k, 0.0) + v
        return {k: self.sums[k] / self.weight for k in names}

    def state_dict(self) -> dict:
        """The running averages, for a checkpoint (a resumed run goes on with them)."""
        return {"sums": dict(self.sums), "weight": self.weight}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.weight = {k: float(v) for k, v in state.get("sums", {}).items()}, float(state.get("weight", 0.0))

    def gradient(self, base: torch.Tensor, losses: dict[str, torch.Tensor], output: torch.Tensor,
                 scale: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
        """The gradient to send back from ``output``: d base / d output plus, for each loss, its gradient
        rescaled to ``scale`` × its ratio × the base gradient's norm. -> (gradient, the norms used)."""
        grads = {"base": torch.autograd.grad(base, output, retain_graph=True)[0]}
        for k, loss in losses.items():
            grads[k] = torch.autograd.grad(loss, output, retain_graph=True)[0]
        norms = self._norms(grads)
        total = grads["base"]
        for k in losses:
            total = total + (scale * self.ratios[k] * norms["base"] / (norms[k] + self.eps)) * grads[k]
        return total, norms
