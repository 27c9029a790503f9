"""Random image transforms applied before the classifier (transformation robustness).

Each factory returns a function ``img [B, 3, H, W] -> img``.  Random draws come
from one seeded ``torch.Generator`` and are shared by every row of the batch, so
row i of a batch sees exactly what a one-target run with the same seed sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor], torch.Tensor]


def _pick(values: Sequence[float], gen: torch.Generator) -> float:
    return float(values[int(torch.randint(len(values), (1,), generator=gen))])


def pad(n: int, mode: str = "constant", value: float = 0.5) -> Transform:
    """Pad every side by ``n`` pixels (constant ``value`` or ``reflect``)."""

    def fn(x):
        if n <= 0:
            return x
        if mode == "constant":
            return F.pad(x, (n, n, n, n), mode="constant", value=value)
        return F.pad(x, (n, n, n, n), mode=mode)

    return fn


def jitter(d: int, gen: torch.Generator) -> Transform:
    """Shift by a random (dy, dx) in [-d, d] (circular: the size stays the same)."""

    def fn(x):
        if d <= 0:
            return x
        dy, dx = (int(v) for v in torch.randint(-d, d + 1, (2,), generator=gen))
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))

    return fn


def scale(factors: Sequence[float], gen: torch.Generator) -> Transform:
    """Resize by a factor drawn from ``factors`` (bilinear)."""

    def fn(x):
        if not factors:
            return x
        s = _pick(factors, gen)
        if s == 1.0:
            return x
        h, w = x.shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    return fn


def rotate(degrees: Sequence[float], gen: torch.Generator) -> Transform:
    """Rotate about the centre by an angle (degrees) drawn from ``degrees``."""

    def fn(x):
        if not degrees:
            return x
        a = math.radians(_pick(degrees, gen))
        if a == 0:
            return x
        c, s = math.cos(a), math.sin(a)
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return fn


def compose(transforms: Sequence[Transform]) -> Transform:
    def fn(x):
        for t in transforms:
            x = t(x)
        return x

    return fn


def standard(
    gen: torch.Generator,
    pad_px: int = 0,
    jitter_px: int = 0,
    scales: Sequence[float] = (),
    degrees: Sequence[float] = (),
    jitter_after: int = 0,
) -> list[Transform]:
    """Lucid's usual chain: pad, jitter, random scale, random rotation, small jitter."""
    out: list[Transform] = []
    if pad_px:
        out.append(pad(pad_px))
    if jitter_px:
        out.append(jitter(jitter_px, gen))
    if scales:
        out.append(scale(list(scales), gen))
    if degrees:
        out.append(rotate(list(degrees), gen))
    if jitter_after:
        out.append(jitter(jitter_after, gen))
    return out


def from_config(node: Mapping | None, gen: torch.Generator) -> list[Transform]:
    """``{pad, jitter, scale, rotate, jitter_after}`` (a config's ``transforms:`` block) -> chain."""
    t = node or {}
    return standard(
        gen,
        pad_px=int(t.get("pad", 0) or 0),
        jitter_px=int(t.get("jitter", 0) or 0),
        scales=list(t.get("scale") or []),
        degrees=list(t.get("rotate") or []),
        jitter_after=int(t.get("jitter_after", 0) or 0),
    )
