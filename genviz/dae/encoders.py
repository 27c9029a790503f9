"""DAE encoders: the paper's, trained from scratch, or a frozen pretrained trunk with a small
trainable head (the route of DGN-AM and of Dosovitskiy & Brox 2016: a generator that inverts a
general encoder needs far less data than an autoencoder that must learn both halves).

``build_encoder(spec, image_size, code_channels, code_size)`` with ``spec["kind"]``:

- ``paper``: :class:`genviz.generator.Encoder` (five conv blocks, dense 2048, dense code).
- ``trunk``: ``classifier`` (any name genviz builds) read at ``layer``; head ``conv`` (the
  feature map pooled to ``code_size`` x ``code_size``, then 3x3 conv -> ReLU -> 1x1 conv to
  ``code_channels``: a spatial code) or ``linear`` (global average pool -> linear to the code).
Every encoder takes ImageNet-standardized images and returns codes [B, code_channels * code_size**2].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genviz.dae.trunk import FrozenFeatures
from genviz.generator import Encoder, to_pixels

ENCODERS = ("paper", "trunk")


class TrunkEncoder(nn.Module):
    """Frozen classifier trunk (not a submodule: see genviz.dae.trunk) + trainable head."""

    def __init__(
        self,
        trunk: FrozenFeatures,
        layer: str,
        image_size: int,
        code_channels: int,
        code_size: int,
        head: str = "conv",
        hidden: int = 256,
    ):
        super().__init__()
        self.__dict__["trunk"] = trunk  # plain attribute: never in parameters() or state_dict()
        self.layer, self.code_size, self.head_kind = layer, int(code_size), head
        with torch.no_grad():
            c = trunk(torch.zeros(1, 3, image_size, image_size), [layer])[layer].shape[1]
        if head == "conv":
            h = int(hidden) or code_channels
            self.head = nn.Sequential(
                nn.Conv2d(c, h, 3, padding=1), nn.ReLU(), nn.Conv2d(h, code_channels, 1), nn.Flatten()
            )
        elif head == "linear":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c, code_channels * code_size**2))
        else:
            raise ValueError(f"trunk encoder head must be 'conv' or 'linear', got {head!r}")

    def forward(self, x_std: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.trunk(to_pixels(x_std), [self.layer])[self.layer]
        size = self.code_size if self.head_kind == "conv" else 1
        if f.shape[-1] != size or f.shape[-2] != size:
            f = F.adaptive_avg_pool2d(f, size)
        return self.head(f)


def build_encoder(
    spec: dict | None,
    image_size: int,
    code_channels: int,
    code_size: int,
    frozen: dict[str, FrozenFeatures] | None = None,
) -> nn.Module:
    """``frozen``: a cache {classifier name: FrozenFeatures} shared with the perceptual loss."""
    spec = dict(spec or {})
    kind = spec.pop("kind", "paper")
    if kind == "paper":
        return Encoder(**spec, image_size=image_size, code_dim=code_channels * code_size**2)
    if kind == "trunk":
        name, layer = spec.pop("classifier", "efficientnet_lite0"), spec.pop("layer", "blocks6")
        trunk = frozen_features(name, frozen)
        trunk.check([layer])
        return TrunkEncoder(trunk, layer, image_size, code_channels, code_size, **spec)
    raise ValueError(f"dae encoder kind must be one of {', '.join(ENCODERS)}, got {kind!r}")


def frozen_features(name: str, cache: dict | None = None) -> FrozenFeatures:
    """One frozen network per classifier name (``cache``: shared by encoder and losses)."""
    if cache is not None and name in cache:
        return cache[name]
    f = FrozenFeatures(name)
    if cache is not None:
        cache[name] = f
    return f
