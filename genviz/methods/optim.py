"""The normalized-gradient optimizer of the Keras filter example, DeepDream and multiscale."""

from __future__ import annotations

import torch


class NormalizedGradient(torch.optim.Optimizer):
    """Gradient step normalized per image: p <- p - lr * g / rms(g) (the Keras filter example and
    DeepDream's step).  Stateless, so the tensor may change size between steps (multiscale, octaves),
    and each row's step depends only on its own gradient."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                rms = g.pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (g.dim() - 1)))
                p.sub_(group["lr"] * g / (rms + group["eps"]))
