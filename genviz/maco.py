"""MACO's parameterization (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks
with MAgnitude Constrained Optimization"): a fixed magnitude spectrum, an optimized phase.

The image is ``sigmoid(decorrelate(irfft2(M * exp(i * phase))))``: ``M`` is the mean amplitude
spectrum of real photos in the decorrelated colour space of :mod:`genviz.fourier` (taken of
their logit, the inverse of the sigmoid that makes the image, so a random phase gives an image
with a photo's contrast), and only the phase is optimized (standardized per image, as the
reference implementation does).  The phase is made antisymmetric on the self-conjugate
columns of the real FFT (frequency 0 and Nyquist along x), so the inverse FFT keeps the
magnitude exactly: whatever the phase, the image's spectrum (before the colour map and the
sigmoid) is ``M``.  At frequency 0, ``M`` holds the photos' mean colour (a signed number).

``M`` is computed once from a folder of photos by :func:`mean_amplitude` (``python -m
genviz.maco``; by default the even-index classes of the shared ``imagenet-val-1k``) and ships
as ``genviz/weights/maco_magnitude_<size>.pt``, so the method needs no data.  The transparency
map is the accumulated absolute gradient of the objective with respect to the image; the run
saves it as the image with :func:`transparency_alpha` as its alpha channel, as the paper shows it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from .fourier import COLOR_SQRT, decorrelate
from .params import Param

WEIGHTS = Path(__file__).resolve().parent / "weights"
SIZE = 224  # the side of the shipped spectrum
EPS = 0.01  # photos' pixels are clamped to [EPS, 1 - EPS] before the logit
# the standard deviation of the standardized phase: pi, not the reference's 1 (phases ~ N(0, 1)
# have E[cos] = exp(-1/2), so every frequency adds up in phase at the origin: a white blob at
# the image's corners, one point of the periodic image; with pi, E[cos] = exp(-pi^2 / 2) < 0.01)
PHASE_SPREAD = torch.pi


def shipped_path(size: int = SIZE) -> Path:
    return WEIGHTS / f"maco_magnitude_{size}.pt"


def _color_matrix(device, dtype) -> torch.Tensor:
    """The matrix :func:`genviz.fourier.decorrelate` applies (decorrelated colour -> RGB)."""
    m = COLOR_SQRT.to(device, dtype)
    return m / m.norm(dim=0).max()


def signal_of(rgb: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Images in [0, 1] [B, 3, H, W] -> the decorrelated signal whose spectrum MACO fixes (the
    inverse of the sigmoid and of :func:`genviz.fourier.decorrelate`; pixels clamped to
    [eps, 1 - eps] first)."""
    inv = torch.linalg.inv(_color_matrix(rgb.device, rgb.dtype))
    return torch.einsum("ij,bjhw->bihw", inv, torch.logit(rgb.clamp(eps, 1 - eps)))


def _mirror(h: int) -> torch.Tensor:
    """Row index of frequency -ky for each row ky of an FFT of height ``h``."""
    return (-torch.arange(h)) % h


def _self_conjugate_columns(w: int) -> list[int]:
    """Columns of an ``rfft2`` of width ``w`` whose values must be Hermitian along y."""
    return [0, w // 2] if w % 2 == 0 else [0]


def symmetrize(t: torch.Tensor, w: int, sign: float) -> torch.Tensor:
    """``t`` [..., H, w // 2 + 1] with its self-conjugate columns made symmetric (``sign`` +1,
    for a magnitude) or antisymmetric (-1, for a phase) along y."""
    cols = _self_conjugate_columns(w)
    idx = _mirror(t.shape[-2]).to(t.device)
    part = t[..., cols]
    part = (part + sign * part[..., idx, :]) / 2
    out = t.clone()
    out[..., cols] = part
    return out


def periodic(x: torch.Tensor) -> torch.Tensor:
    """The periodic component of images [B, C, H, W] (Moisan's periodic + smooth decomposition):
    ``x`` minus the smooth image that carries its jumps across opposite borders, which put a
    bright cross on the axes of an FFT (seen as horizontal and vertical streaks in images made
    from a spectrum)."""
    h, w = x.shape[-2:]
    v = torch.zeros_like(x)
    v[..., 0, :] += x[..., -1, :] - x[..., 0, :]
    v[..., -1, :] += x[..., 0, :] - x[..., -1, :]
    v[..., :, 0] += x[..., :, -1] - x[..., :, 0]
    v[..., :, -1] += x[..., :, 0] - x[..., :, -1]
    q = torch.arange(h, dtype=x.dtype, device=x.device)[:, None]
    r = torch.arange(w, dtype=x.dtype, device=x.device)[None, :]
    den = 2 * torch.cos(2 * torch.pi * q / h) + 2 * torch.cos(2 * torch.pi * r / w) - 4
    den[0, 0] = 1.0
    s_hat = torch.fft.fft2(v) / den
    s_hat[..., 0, 0] = 0.0
    return x - torch.fft.ifft2(s_hat).real


@torch.no_grad()
def mean_amplitude(files, size: int = SIZE, batch: int = 32) -> torch.Tensor:
    """The mean amplitude spectrum [3, size, size // 2 + 1] of photos (paths): each centre-cropped
    to ``size``, mapped by :func:`signal_of`, its :func:`periodic` component, ``rfft2``
    (orthonormal); at frequency 0 the mean coefficient (the mean colour, signed) instead of its
    mean amplitude."""
    from .images import load_image

    files = list(files)
    if not files:
        raise ValueError("no photos to compute the MACO magnitude spectrum from")
    total = torch.zeros(3, size, size // 2 + 1, dtype=torch.float64)
    dc = torch.zeros(3, dtype=torch.float64)
    for s in range(0, len(files), batch):
        x = torch.stack([load_image(f, size) for f in files[s : s + batch]]).double()
        spec = torch.fft.rfft2(periodic(signal_of(x)), norm="ortho")
        total += spec.abs().sum(0)
        dc += spec[:, :, 0, 0].real.sum(0)
    m = total / len(files)
    m[:, 0, 0] = dc / len(files)
    return symmetrize(m, size, 1.0).float()


def resize_magnitude(m: torch.Tensor, size: int) -> torch.Tensor:
    """A spectrum [3, S, S // 2 + 1] for images of side ``size``: resampled on the centred
    frequency grid, then scaled so that the image keeps its mean colour and its per-pixel
    variance (with the orthonormal FFT)."""
    S = m.shape[-2]
    if size == S:
        return m
    mean = m[:, 0, 0] / S  # the mean colour: frequency 0 is mean * sqrt(S * S)
    centred = torch.fft.fftshift(m, dim=-2)[None]
    r = F.interpolate(centred, size=(size, size // 2 + 1), mode="bilinear", align_corners=False)[0]
    r = torch.fft.ifftshift(r, dim=-2)

    def power(t: torch.Tensor, n: int) -> torch.Tensor:  # per-pixel variance (orthonormal)
        w = torch.full_like(t, 2.0)
        w[..., _self_conjugate_columns(n)] = 1.0  # the other columns stand for two frequencies
        w[:, 0, 0] = 0.0
        return (w * t**2).sum() / (n * n)

    r = r * (power(m, S) / power(r, size)).sqrt()
    r[:, 0, 0] = mean * size
    return symmetrize(r, size, 1.0)


def load_magnitude(path: str | Path | None = None, size: int = SIZE) -> torch.Tensor:
    """The spectrum of a ``.pt`` file written by :func:`save_magnitude` (None: the shipped one),
    resized to images of side ``size``."""
    p = Path(path) if path else shipped_path()
    if not p.is_file():
        raise FileNotFoundError(
            f"method.magnitude: no spectrum file at {str(p)!r}; make one with python -m genviz.maco "
            "--out FILE, or set method.magnitude=null for the shipped one"
        )
    data = torch.load(p, map_location="cpu", weights_only=True)
    m = data["magnitude"] if isinstance(data, dict) else data
    if m.dim() != 3 or m.shape[0] != 3 or m.shape[-1] != m.shape[-2] // 2 + 1:
        raise ValueError(
            f"method.magnitude: {p} holds a tensor {tuple(m.shape)}, not a spectrum [3, S, S//2+1]"
        )
    return resize_magnitude(m.float(), int(size))


def save_magnitude(m: torch.Tensor, path: str | Path, source: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"magnitude": m.half(), "source": source, "eps": EPS}, path)
    return path


def signal(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """The decorrelated signal [B, 3, H, W] of a magnitude [3, H, W // 2 + 1] (symmetric on the
    self-conjugate columns) and phases [B, 3, H, W // 2 + 1] (standardized per image here): its
    ``rfft2`` is ``magnitude * exp(i * phase)``, so its amplitude spectrum is the magnitude."""
    h = w = phase.shape[-2]  # square images
    p = phase - phase.mean((1, 2, 3), keepdim=True)
    p = p * (PHASE_SPREAD / (p.std((1, 2, 3), keepdim=True) + 1e-5))
    p = symmetrize(p, w, -1.0)
    return torch.fft.irfft2(torch.complex(magnitude * p.cos(), magnitude * p.sin()), s=(h, w), norm="ortho")


def maco_param(
    batch: int,
    size: int,
    magnitude: torch.Tensor,
    seed: int = 0,
    device="cpu",
    std: float = 1.0,
) -> Param:
    """Phases [B, 3, size, size // 2 + 1] (a seeded N(0, std) draw shared by the rows) -> images
    in (0, 1) with the fixed ``magnitude`` [3, size, size // 2 + 1].  ``Param.transparency``
    [B, 3, size, size] accumulates |d loss / d image| over every backward pass."""
    h = w = int(size)
    if tuple(magnitude.shape) != (3, h, w // 2 + 1):
        raise ValueError(
            f"a magnitude {tuple(magnitude.shape)} for {size}px images; expected {(3, h, w // 2 + 1)}"
        )
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    init = torch.randn(1, 3, h, w // 2 + 1, generator=gen, device=device) * std
    phase = init.repeat(batch, 1, 1, 1).contiguous().requires_grad_(True)
    mag = symmetrize(magnitude.to(device), w, 1.0)
    acc = torch.zeros(batch, 3, h, w, device=device, dtype=mag.dtype)

    def accumulate(g: torch.Tensor) -> None:
        acc.add_(g.abs())

    def image_fn() -> torch.Tensor:
        img = torch.sigmoid(decorrelate(signal(mag, phase)))
        if img.requires_grad:
            img.register_hook(accumulate)
        return img

    return Param([phase], image_fn, None, transparency=acc)


def transparency_alpha(tmap: torch.Tensor, percentile: float = 80.0) -> torch.Tensor:
    """An accumulated gradient map ([3, H, W] or [H, W]) -> alpha [H, W] in [0, 1]: its channel
    mean, clipped at its ``percentile``-th percentile, over its maximum (the paper's display)."""
    a = tmap.float().mean(0) if tmap.dim() == 3 else tmap.float()
    a = a.clamp(max=float(torch.quantile(a.flatten(), percentile / 100)))
    return a / a.max() if a.max() > 0 else torch.ones_like(a)


def main(argv=None) -> int:
    """Compute the shipped spectrum from a folder of photos (only its even-index classes)."""
    from .references import default_reference_dir, load_reference

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--folder", default=None, help="photos (default: the shared imagenet-val-1k)")
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--out", default=None, help=f"default: {shipped_path()}")
    args = ap.parse_args(argv)
    ref = load_reference(args.folder)
    files = [f for f, c in zip(ref.files, ref.classes) if c % 2 == 0]
    m = mean_amplitude(files, args.size)
    folder = args.folder or str(default_reference_dir())
    source = f"mean amplitude of {len(files)} photos of the even-index classes of {Path(folder).name}"
    out = save_magnitude(m, args.out or shipped_path(args.size), source)
    print(f"{out}: {source}, {args.size}px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
