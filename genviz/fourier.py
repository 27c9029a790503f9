"""Fourier parameterization with decorrelated colour (the Lucid/Lucent recipe, rewritten).

The image is the inverse real FFT of a learned spectrum whose coefficients are
scaled by 1/frequency^decay_power (so every frequency band starts with about the
same energy per unit of gradient: no high-frequency noise bias), mapped from a
decorrelated colour space to RGB by the square root of ImageNet's colour
covariance (its SVD factor), and squashed to [0, 1] by a sigmoid.
"""

from __future__ import annotations

import torch

from .params import Param

# square root of ImageNet's RGB colour correlation matrix (Lucid's color_correlation_svd_sqrt)
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def frequencies(h: int, w: int) -> torch.Tensor:
    """|f| on the rfft2 grid [h, w // 2 + 1] (cycles per pixel)."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx**2 + fy**2)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    return 1.0 / frequencies(h, w).clamp_min(1.0 / max(h, w)) ** decay_power


def decorrelate(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] decorrelated colour -> RGB (columns normalized by the largest column norm)."""
    m = COLOR_SQRT.to(x.device, x.dtype)
    m = m / m.norm(dim=0).max()
    return torch.einsum("ij,bjhw->bihw", m, x)


def fourier_param(
    batch: int,
    size: int,
    seed: int = 0,
    device="cpu",
    sd: float = 0.01,
    decay_power: float = 1.0,
    decorrelated: bool = True,
    scale_out: float = 4.0,
) -> Param:
    """Spectra [B, 3, H, W//2+1] (real and imaginary parts) -> images in [0, 1] through a sigmoid."""
    h = w = int(size)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    shape = (1, 3, h, w // 2 + 1, 2)
    init = torch.randn(*shape, generator=gen, device=device) * sd
    spec = init.repeat(batch, 1, 1, 1, 1).contiguous().requires_grad_(True)
    scale = spectrum_scale(h, w, decay_power).to(device)

    def image_fn() -> torch.Tensor:
        c = torch.view_as_complex(spec) * scale
        x = torch.fft.irfft2(c, s=(h, w), norm="ortho") / scale_out
        if decorrelated:
            x = decorrelate(x)
        return torch.sigmoid(x)

    return Param([spec], image_fn, None)
