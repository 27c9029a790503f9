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


def crops(
    n: int, scale: Sequence[float], size: int, gen: torch.Generator, noise: float = 0.0, wrap: bool = False
) -> Transform:
    """``n`` random square crops of every image, each resized to ``size`` (bilinear), plus noise
    N(0, noise) + U(-noise/2, noise/2) (MACO's robustness): [B, 3, H, W] -> [n * B, 3, size, size],
    crop k of row i at k * B + i (the objective scores a row by the mean over its crops).  A crop's
    side is a fraction of the image's drawn uniformly from ``scale`` = (low, high); its centre is
    drawn from N(0.5, 0.15) per axis, kept inside the image, or with ``wrap`` (a periodic image,
    e.g. made by an inverse FFT) anywhere in it, a crop past an edge continuing at the opposite
    one.  ``gen`` lives on the images' device: nothing leaves it."""
    lo, hi = float(scale[0]), float(scale[1])

    def fn(x):
        B, dev = x.shape[0], x.device
        side = lo + (hi - lo) * torch.rand(n, 1, generator=gen, device=dev)
        centre = 0.5 + 0.15 * torch.randn(n, 2, generator=gen, device=dev)
        theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
        if wrap:  # the image padded circularly by half its side: it spans [-0.5, 1.5] of the original
            centre = centre.clamp(0, 1)
            x = F.pad(x, (x.shape[-1] // 2,) * 2 + (x.shape[-2] // 2,) * 2, mode="circular")
            theta[:, 0, 0] = theta[:, 1, 1] = side[:, 0] * 0.5
            theta[:, :, 2] = centre - 0.5
        else:
            centre = torch.minimum(torch.maximum(centre, side / 2), 1 - side / 2)
            theta[:, 0, 0] = theta[:, 1, 1] = side[:, 0]
            theta[:, :, 2] = 2 * centre - 1
        grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
        out = F.grid_sample(
            x.repeat(n, 1, 1, 1), grid.repeat_interleave(B, 0), mode="bilinear", align_corners=False
        )
        if noise > 0:
            shape = (n, 1, 3, size, size)
            eps = noise * torch.randn(shape, generator=gen, device=dev)
            eps = eps + noise * (torch.rand(shape, generator=gen, device=dev) - 0.5)
            out = (out.reshape(n, B, 3, size, size) + eps).reshape(n * B, 3, size, size)
        return out

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
