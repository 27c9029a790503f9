"""Evaluate trained DAE checkpoints on their held-out validation images.

Per checkpoint: val MSE (standardized space, = loss=paper), PSNR on [0,1] pixels, and a blur
measure: the high-frequency energy of the reconstructions relative to that of the clean
images (1.0 = as sharp as the originals).  Also reference PSNRs (noisy input, thumbnails)
and one grid: rows noisy / clean / reconstruction of each checkpoint.  With ``--realism EVALUATOR``
also the realism figures of genviz/realism.py at 128 px: colourfulness and RMS contrast medians of
the photos and of each checkpoint's reconstructions, and the KID of the reconstructions to the
photos in the evaluator's pooled features (do reconstructions look like photos?).

    python benchmarks/dae_recon_eval.py runs/dae_cpu_small/checkpoints/last.ckpt \
        runs/dae_cpu_small_fft/checkpoints/last.ckpt --out outputs/dae_recon.png
    python benchmarks/dae_recon_eval.py runs/trunk_lite0-val1k_even/checkpoints/last.ckpt \
        --classes odd --out outputs/dae_trunk_recon_odd.png    # photos of classes it never saw
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from genviz.dae.data import ImageDataModule
from genviz.dae.module import load_dae, psnr
from genviz.generator import from_pixels


def hf_energy(x: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Spectral energy above ``cutoff`` x the sampling frequency (radially), per batch."""
    f = torch.fft.rfft2(x - x.mean((-2, -1), keepdim=True), norm="ortho").abs() ** 2
    fy = torch.fft.fftfreq(x.shape[-2]).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(x.shape[-1]).view(1, -1)
    return (f * ((fy**2 + fx**2).sqrt() > cutoff)).sum()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--root", default="../shared/data/imagenet-val-1k")
    p.add_argument("--val-size", type=int, default=100)
    p.add_argument("--classes", default=None, help="ImageNet classes to draw from: even, odd, first-last")
    p.add_argument("--seed", type=int, default=0, help="the data.seed of the training run (same split)")
    p.add_argument(
        "--out",
        default="outputs/dae_recon.png",
        help="the grid holds dataset photos: keep it out of the repository",
    )
    p.add_argument("--n-grid", type=int, default=8)
    p.add_argument("--realism", default=None, help="an evaluator, e.g. efficientnet_lite2: realism figures")
    args = p.parse_args()
    torch.set_grad_enabled(False)

    models = [load_dae(c) for c in args.checkpoints]
    size = models[0].hparams.image_size
    dm = ImageDataModule(
        args.root,
        image_size=size,
        val_size=args.val_size,
        seed=args.seed,
        num_workers=0,
        classes=args.classes,
    )
    dm.setup()
    x = torch.stack([dm.val_set[i] for i in range(len(dm.val_set))])
    noisy = models[0].add_noise(x, torch.Generator().manual_seed(0))
    print(f"{len(x)} validation images, {size} px, noise std {models[0].hparams.noise_std}")
    print(f"reference PSNR: noisy input {psnr(noisy, x):.2f} dB", end="")
    for s in (5, 10, 20):
        thumb = F.interpolate(F.interpolate(x, size=s, mode="area"), size=size, mode="bilinear")
        print(f" | {s}x{s} thumbnail {psnr(thumb, x):.2f} dB", end="")
    print()
    rows = [noisy[: args.n_grid], x[: args.n_grid]]
    hf_clean = hf_energy(x)
    looks = None
    if args.realism:
        from genviz.classifiers import build_classifier
        from genviz.realism import REALISM_SIZE, at_size, colourfulness, kid, pooled_features, rms_contrast

        judge = build_classifier(args.realism)

        def looks(images):  # noqa: F811 - (features, colourfulness, contrast) at the realism size
            im = at_size(images.clamp(0, 1))
            return pooled_features(judge, im), colourfulness(im).median(), rms_contrast(im).median()

        real = looks(x)
        print(
            f"photos at {REALISM_SIZE} px: colourfulness median {real[1]:.1f}, RMS contrast median {real[2]:.3f}"
        )
    for ckpt, m in zip(args.checkpoints, models):
        recon_std = m(from_pixels(noisy))
        recon = m.reconstruct(x, torch.Generator().manual_seed(0))[1]
        mse = F.mse_loss(recon_std, from_pixels(x))
        step = torch.load(ckpt, map_location="cpu", weights_only=True).get("global_step")
        print(
            f"{ckpt}: step {step}, loss={m.hparams.loss}: val MSE {mse:.4f}, PSNR {psnr(recon, x):.2f} dB, "
            f"HF energy ratio {hf_energy(recon.clamp(0, 1)) / hf_clean:.3f}"
        )
        if looks is not None:
            fake = looks(recon)
            k, se = kid(real[0], fake[0])
            print(
                f"  reconstructions: colourfulness median {fake[1]:.1f}, RMS contrast median {fake[2]:.3f}, "
                f"KID x1000 to the photos ({args.realism}) {1000 * k:.1f} ± {1000 * se:.1f}"
            )
        rows.append(recon[: args.n_grid])
    grid = make_grid(torch.cat(rows).clamp(0, 1), nrow=min(args.n_grid, len(x)), padding=2, pad_value=1.0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_image(grid, args.out)
    print(f"grid (rows: noisy, clean, then one per checkpoint): {args.out}")


if __name__ == "__main__":
    main()
