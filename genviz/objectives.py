"""Objectives: what to maximize, as functions of a classifier's recorded activations.

Every target of the paper (a class, a channel, a neuron, a whole layer, a
group, weighted sums of them) is *linear* in some layer's activations: a
weight on each class of the head, on each channel's spatial mean, or on each
position of a channel.  :class:`Objective` keeps that form, so

    class_("mosque") + 0.5 * channel("relu5_1", 99)

is again an Objective, and a batch of different targets becomes one weight
tensor per layer (:class:`BatchObjective`): scoring B targets costs one
multiply-and-sum per layer, with no Python loop over targets.

The paper's class loss  -a(c_i) + lambda * sum_{j != i} a(c_j)  is the score
``+1 * a(c_i) - lambda * a(c_j)``; the penalty part is kept apart (``others``)
because it always reads the ReLU head, while the target part may read the
pre-activation to revive a dead start (``a(c_i) = 0`` has no gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Scorer(Protocol):
    """What the engine maximizes: :class:`BatchObjective` for the linear targets, and the
    non-linear objectives of some methods (``genviz.methods.scorers``)."""

    layers: list[str]  # the layers the classifier records for ``score``

    def __len__(self) -> int:  # the batch rows
        ...

    def score(self, store) -> tuple[torch.Tensor, torch.Tensor]:
        """(total [B] to maximize, target activation [B] to report) from the recorded activations."""
        ...


@dataclass(frozen=True)
class Term:
    """weight * activation of ``layer`` at ``index``.

    index: ``("class", c)`` for a head unit, ``("channel", c)`` for the spatial
    mean of channel c (or unit c of a flat layer), ``("neuron", c, y, x)`` with
    y/x None for the centre, ``("layer",)`` for the sum over all channels.
    """

    layer: str
    index: tuple
    weight: float = 1.0


@dataclass
class Objective:
    terms: list[Term] = field(default_factory=list)
    penalize_others: bool = False  # the paper's lambda term, for class targets
    label: str = ""

    @property
    def classes(self) -> list[int]:
        return sorted({t.index[1] for t in self.terms if t.index[0] == "class"})

    @property
    def layers(self) -> list[str]:
        return sorted({t.layer for t in self.terms})

    def __add__(self, other: Objective) -> Objective:
        if other == 0:
            return self
        return Objective(
            self.terms + other.terms,
            self.penalize_others or other.penalize_others,
            f"{self.label}+{other.label}",
        )

    __radd__ = __add__

    def __mul__(self, w: float) -> Objective:
        return Objective(
            [Term(t.layer, t.index, t.weight * float(w)) for t in self.terms],
            self.penalize_others,
            f"{w:g}*{self.label}",
        )

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __truediv__(self, w: float) -> Objective:
        return self * (1.0 / w)


def class_(index: int, label: str | None = None) -> Objective:
    return Objective([Term("head", ("class", int(index)))], True, label or f"class:{index}")


def channel(layer: str, c: int) -> Objective:
    return Objective([Term(layer, ("channel", int(c)))], False, f"channel:{layer}:{c}")


def neuron(layer: str, c: int, y: int | None = None, x: int | None = None) -> Objective:
    pos = "" if y is None else f":{y}:{x}"
    return Objective([Term(layer, ("neuron", int(c), y, x))], False, f"neuron:{layer}:{c}{pos}")


def layer(name: str) -> Objective:
    return Objective([Term(name, ("layer",))], False, f"layer:{name}")


def channels(layer: str, cs) -> Objective:
    """The sum of these channels' objectives (built at once: a long range is linear, not quadratic)."""
    return Objective(
        [t for c in cs for t in channel(layer, c).terms],
        False,
        f"channels:{layer}:{','.join(str(c) for c in cs)}",
    )


def _reduce(a: torch.Tensor, spatial: bool, rows: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C] (channel means) unless ``spatial``; flat layers pass through.  A
    batch of K * ``rows`` images holds K views of each row (view k of row i at k * rows + i, e.g.
    MACO's crops): their mean."""
    if a.dim() == 4 and not spatial:
        a = a.mean((2, 3))
    if a.shape[0] != rows:
        a = a.reshape(-1, rows, *a.shape[1:]).mean(0)
    return a


class BatchObjective:
    """Scores a batch whose row i is optimized for ``objectives[i]``.

    ``score(store) -> (total, target)``: ``total`` [B] is what is maximized
    (target part minus ``lam`` times the other classes of the head), ``target``
    [B] is the target part alone, read from the ReLU outputs (the reported
    activation).  Rows whose target part is <= 0 (a dead start: zero gradient)
    use the pre-activation for the target part until it becomes positive, when
    ``revive=True``.  Recorded activations of K * B images are K views of the B rows (MACO's
    crops): a row's score is the mean over its views.
    """

    def __init__(self, objectives: list[Objective], lam: float = 0.0, revive: bool = True):
        self.objectives = list(objectives)
        self.lam, self.revive = float(lam), revive
        self.layers = sorted({ly for o in objectives for ly in o.layers} | {"head"})
        self._weights: dict[tuple, torch.Tensor] | None = None
        self._penalty: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.objectives)

    def _build(self, store) -> None:
        B = len(self.objectives)
        weights: dict[tuple, torch.Tensor] = {}
        for i, obj in enumerate(self.objectives):
            for t in obj.terms:
                a = store[t.layer].post
                spatial = t.index[0] == "neuron"
                shape = _reduce(a, spatial, a.shape[0]).shape[1:]
                key = (t.layer, spatial)
                w = weights.setdefault(key, torch.zeros(B, *shape, device=a.device, dtype=a.dtype))
                kind = t.index[0]
                n_ch = shape[0]
                if kind in ("class", "channel", "neuron") and not 0 <= t.index[1] < n_ch:
                    raise ValueError(
                        f"{obj.label}: index {t.index[1]} out of range for layer "
                        f"{t.layer!r} with {n_ch} channels/units"
                    )
                if kind in ("class", "channel"):
                    w[i, t.index[1]] += t.weight
                elif kind == "layer":
                    w[i] += t.weight
                elif kind == "neuron":
                    c, y, x = t.index[1:]
                    if len(shape) == 1:
                        w[i, c] += t.weight
                    else:
                        H, W = shape[1:]
                        y = H // 2 if y is None else y
                        x = W // 2 if x is None else x
                        if not (0 <= y < H and 0 <= x < W):
                            raise ValueError(f"{obj.label}: position ({y},{x}) outside {t.layer} ({H}x{W})")
                        w[i, c, y, x] += t.weight
        self._weights = weights
        if self.lam:
            head = store["head"].post
            pen = torch.full((B, head.shape[1]), self.lam, device=head.device, dtype=head.dtype)
            for i, obj in enumerate(self.objectives):
                if not obj.penalize_others:
                    pen[i] = 0
                else:
                    pen[i, obj.classes] = 0
            self._penalty = pen if bool(pen.any()) else None

    def score(self, store) -> tuple[torch.Tensor, torch.Tensor]:
        if self._weights is None:
            self._build(store)
        target = live = None
        B = len(self.objectives)
        for (name, spatial), w in self._weights.items():
            act = store[name]
            post = (_reduce(act.post, spatial, B) * w).flatten(1).sum(1)
            target = post if target is None else target + post
            if self.revive:
                pre = (
                    (_reduce(act.pre, spatial, B) * w).flatten(1).sum(1) if act.pre is not act.post else post
                )
                live = pre if live is None else live + pre
        total = torch.where(target > 0, target, live) if self.revive else target
        if self._penalty is not None:
            total = total - (_reduce(store["head"].post, False, B) * self._penalty).sum(1)
        return total, target
