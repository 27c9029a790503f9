"""Pixel parameterization: the image itself is optimized (the pixel-space methods)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .params import Param


def pixel_param(
    batch: int,
    size: int,
    seed: int = 0,
    device="cpu",
    mean: float = 0.5,
    std: float = 0.04,
    init: torch.Tensor | None = None,
    penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Param:
    """Images [B, 3, size, size]: ``init`` (an image [3, H, W] or [1, 3, H, W]) plus noise of ``std``,
    or ``mean + std * N(0, 1)``.  The noise is drawn once and shared by the rows (one seeded
    generator), so row i is what a one-target run would start from.  ``penalty(img) -> [B]``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    noise = torch.randn(1, 3, size, size, generator=gen, device=device) * std
    if init is not None:
        base = init.to(device).reshape(1, 3, *init.shape[-2:])
        if base.shape[-1] != size or base.shape[-2] != size:
            base = torch.nn.functional.interpolate(
                base, size=(size, size), mode="bilinear", align_corners=False
            )
        x0 = base + noise
    else:
        x0 = mean + noise
    # the list is both Param.params and what image_fn reads: an image op may swap in a resized
    # tensor (multiscale rounds, DeepDream octaves; see methods/baselines._resize_op)
    box = [x0.repeat(batch, 1, 1, 1).contiguous().requires_grad_(True)]
    image_fn = lambda: box[0]
    pen = (lambda: penalty(box[0])) if penalty is not None else None
    return Param(box, image_fn, pen)
