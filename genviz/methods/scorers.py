"""The non-linear objectives of the pixel-space methods, as :class:`~genviz.objectives.Scorer`
objects: DeepDream's layer energy, feature inversion and neural style.  Each has ``layers`` (what
the classifier records), ``len()`` (the batch rows) and ``score(store) -> (total, target)``."""

from __future__ import annotations

import torch

from ..classifiers import Classifier


def features(clf: Classifier, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """The ReLU outputs of ``layers`` for images ``x`` (no gradient)."""
    with torch.no_grad(), clf.recording(layers) as store:
        clf.run(clf.fit_input(x), store)
    return {ly: store[ly].post.detach() for ly in layers}


class LayerL2:
    """DeepDream: maximize the mean square of a layer's activation (every row the same layer)."""

    def __init__(self, layer: str, n: int):
        self.layer, self.n, self.layers = layer, n, [layer, "head"]

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        a = store[self.layer].post
        s = a.pow(2).flatten(1).mean(1)
        return s, s.detach()


def _gram(a: torch.Tensor) -> torch.Tensor:
    B, C = a.shape[:2]
    f = a.reshape(B, C, -1)
    return f @ f.transpose(1, 2) / f.shape[-1]


class Inversion:
    """Mahendran & Vedaldi: minimize ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at ``layer``.
    Reported target: exp(-relative error) in (0, 1], 1 = perfect reconstruction."""

    def __init__(self, ref: torch.Tensor, layer: str, n: int):
        self.ref, self.layer, self.n, self.layers = ref, layer, n, [layer, "head"]
        self.norm = ref.pow(2).flatten(1).sum(1).clamp_min(1e-12)

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        d = (store[self.layer].post - self.ref).pow(2).flatten(1).sum(1) / self.norm
        return -d, torch.exp(-d.detach())


class Style:
    """Gatys et al.: alpha * sum_l v_l content_l + beta * sum_l w_l style_l (minimized).
    content_l = mean squared feature difference, style_l = squared Gram difference / (4 C^2)
    (Grams normalized by the number of positions).  Reported target: 1 / (1 + loss)."""

    def __init__(self, content: dict, style: dict, cw: dict, sw: dict, alpha: float, beta: float, n: int):
        self.content, self.style = content, {k: _gram(v) for k, v in style.items()}
        self.cw, self.sw, self.alpha, self.beta, self.n = cw, sw, alpha, beta, n
        self.layers = sorted(set(cw) | set(sw) | {"head"})

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        loss = 0.0
        for ly, w in self.cw.items():
            loss = loss + self.alpha * w * (store[ly].post - self.content[ly]).pow(2).flatten(1).mean(1)
        for ly, w in self.sw.items():
            g = _gram(store[ly].post)
            C = g.shape[-1]
            loss = loss + self.beta * w * (g - self.style[ly]).pow(2).flatten(1).sum(1) / (4 * C * C)
        return -loss, 1.0 / (1.0 + loss.detach())
