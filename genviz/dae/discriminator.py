"""A small patch discriminator for the DAE's adversarial loss (pix2pix-style PatchGAN,
spectral-normalized): it scores every ~22 px patch as real or reconstructed, which asks the
decoder for local texture and sharpness rather than one global judgement."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, channels: int = 32):
        super().__init__()
        c = int(channels)
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(3, c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * c, 1, 3, padding=1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Standardized images -> a map of real-vs-fake scores [B, 1, H/8, W/8]."""
        return self.net(x)


def hinge_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()
