"""A small patch discriminator for the DAE's adversarial loss (pix2pix-style PatchGAN,
spectral-normalized): at depth 3 it scores every ~38 px patch as real or reconstructed, which asks the
decoder for local texture and sharpness rather than one global judgement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """``depth`` stride-2 convs (channels doubling from ``channels``) then a 3x3 conv to one score
    per patch.  Receptive field (the last 3x3 conv included): depth 3 ~38 px (texture at 128 px);
    depth 4 ~78 px, all of a 64 px image (composition, contrast, colour as well as texture)."""

    def __init__(self, channels: int = 32, depth: int = 3):
        super().__init__()
        c, depth = int(channels), int(depth)
        if depth < 1:
            raise ValueError(f"dae.adversarial.depth must be >= 1, got {depth}")
        layers: list[nn.Module] = []
        cin = 3
        for i in range(depth):
            cout = c * 2**i
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            cin = cout
        layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized images -> a map of real-vs-fake scores [B, 1, H/2**depth, W/2**depth]."""
        return self.net(x)


def hinge_d_loss(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, real_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Hinge loss of the discriminator; ``real_weight`` [B] counts only some images as reals (the
    sharp photos of a batch; a batch without any has no real term), without a device-host sync."""
    fake = F.relu(1 + fake_scores).mean()
    if real_weight is None:
        return F.relu(1 - real_scores).mean() + fake
    per_image = F.relu(1 - real_scores).flatten(1).mean(1)
    return (per_image * real_weight).sum() / real_weight.sum().clamp_min(1) + fake
