"""Image regularizers of the pixel-space baselines.

Penalties (differentiable, one value per image [B]): total variation, Lp norm.
Filters (plain functions on [B, 3, H, W]): Gaussian blur, median filter.
Image ops (``fn(step, param)``, run by the engine under no_grad after each
optimizer step, in place on the pixel tensor): clipping, L2 decay, blur every k
steps, median filter every k steps.  ``skip_after`` lets the last step(s) be
pure gradient steps (the regularized-ascent recipe keeps the image before the final regularization).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

ImageOp = Callable[[int, object], None]


# -- penalties ------------------------------------------------------------------------------
def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Mean over pixels of (dx^2 + dy^2)^(beta/2), per image (Mahendran & Vedaldi's V^beta; a mean,
    not a sum, so that weights do not depend on the image size)."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    v = dx**2 + dy**2
    if beta != 2.0:
        v = (v + 1e-8) ** (beta / 2)
    return v.flatten(1).mean(1)


def lp_norm(x: torch.Tensor, p: float = 6.0, center: float = 0.5) -> torch.Tensor:
    """Mean of |x - center|^p per image (p = 6: the L6 'no extreme pixel' prior)."""
    return ((x - center).abs() ** p).flatten(1).mean(1)


# -- filters --------------------------------------------------------------------------------
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over H and W (not channels), reflect padding."""
    if sigma <= 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    C = x.shape[1]
    mode = "reflect" if r < min(x.shape[-2:]) else "replicate"
    y = F.pad(x, (r, r, r, r), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """size x size median over H and W of each channel, reflect padding."""
    if size <= 1:
        return x
    r = size // 2
    B, C, H, W = x.shape
    mode = "reflect" if r < min(H, W) else "replicate"
    y = F.pad(x, (r, size - 1 - r, r, size - 1 - r), mode=mode)
    patches = F.unfold(y, size)  # [B, C*k*k, H*W]
    return patches.view(B, C, size * size, H * W).median(2).values.view(B, C, H, W)


# -- image ops ------------------------------------------------------------------------------
def _pixels(param) -> torch.Tensor:
    return param.params[0]


def clip_op(lo: float = 0.0, hi: float = 1.0) -> ImageOp:
    def op(step, param):
        _pixels(param).data.clamp_(lo, hi)

    return op


def decay_op(decay: float, center: float = 0.5, skip_after: int | None = None) -> ImageOp:
    """x <- center + (1 - decay)(x - center)  (``x *= 1 - l2decay`` on mean-subtracted pixels)."""

    def op(step, param):
        if decay and (skip_after is None or step < skip_after):
            p = _pixels(param).data
            p.sub_(center).mul_(1 - decay).add_(center)

    return op


def _filter_op(filter_fn, active: bool, every: int, skip_after: int | None) -> ImageOp:
    """An image op replacing the pixels by ``filter_fn(pixels)`` every ``every`` steps, until
    step ``skip_after`` (never when ``active`` is false)."""

    def op(step, param):
        if active and every > 0 and step % every == 0 and (skip_after is None or step < skip_after):
            p = _pixels(param)
            p.data = filter_fn(p.data)

    return op


def blur_op(sigma: float, every: int, skip_after: int | None = None) -> ImageOp:
    return _filter_op(lambda x: gaussian_blur(x, sigma), sigma > 0, every, skip_after)


def median_op(size: int, every: int, skip_after: int | None = None) -> ImageOp:
    return _filter_op(lambda x: median_filter(x, size), size > 1, every, skip_after)
