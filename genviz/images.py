"""Image files: PNGs, labelled grids, frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic import regular_file, save_png_atomic

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
EVAL_CROP = 0.875  # the usual ImageNet evaluation crop: the centre 87.5% of the shorter side


def to_pil(img: torch.Tensor) -> Image.Image:
    """[3, H, W] in [0, 1] -> PIL image."""
    arr = img.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def save_png(img: torch.Tensor, path: str | Path) -> Path:
    """Write ``img`` as a PNG atomically (a temporary file beside it, then a rename): a reader
    or a killed run never leaves a partial or 0-byte PNG at ``path``."""
    path = Path(path)
    save_png_atomic(to_pil(img), path)
    return path


def to_rgb8(im: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``im``.  16-bit grayscale (PIL modes ``I;16*``, and ``I`` as older
    Pillows open 16-bit PNGs) is scaled from [0, 65535] to [0, 255]; PIL's own ``convert``
    would clip it (everything above 255 white).  16-bit RGB(A) PNGs already open as 8-bit."""
    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im).astype(np.float32) / 257.0
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def load_image(path: str | Path, size: int | None = None, crop_fraction: float = 1.0) -> torch.Tensor:
    """An image file -> [3, H, W] RGB in [0, 1] (16-bit grayscale scaled, :func:`to_rgb8`).
    With ``size``: the shorter side is resized to ``size / crop_fraction`` and the centre
    ``size`` x ``size`` is cropped (1.0: the whole shorter side; :data:`EVAL_CROP`: what an
    evaluator sees).  Not a regular file (a FIFO...): :class:`~genviz.atomic.NotRegularFileError`."""
    with Image.open(regular_file(path)) as im:
        im = to_rgb8(im)
        if size:
            short = round(size / crop_fraction)
            w, h = im.size
            s = short / min(w, h)
            im = im.resize((max(short, round(w * s)), max(short, round(h * s))), Image.BICUBIC)
            w, h = im.size
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
        return torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255


def grid(
    images: list[torch.Tensor] | torch.Tensor,
    labels: list[str] | None = None,
    ncol: int | None = None,
    cell: int | None = None,
    pad: int = 4,
) -> Image.Image:
    """A labelled contact sheet."""
    images = list(images)
    if not images:
        raise ValueError("no images for the grid")
    n = len(images)
    ncol = ncol or min(n, 8)
    nrow = (n + ncol - 1) // ncol
    cell = cell or images[0].shape[-1]
    text_h = 14 if labels else 0
    sheet = Image.new("RGB", (ncol * (cell + pad) + pad, nrow * (cell + pad + text_h) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for k, img in enumerate(images):
        r, c = divmod(k, ncol)
        x, y = pad + c * (cell + pad), pad + r * (cell + pad + text_h)
        sheet.paste(to_pil(img).resize((cell, cell), Image.BICUBIC), (x, y))
        if labels:
            label = labels[k]
            while draw.textlength(label, font=font) > cell and len(label) > 4:
                label = label[:-2]
            draw.text((x, y + cell + 1), label, fill="black", font=font)
    return sheet
