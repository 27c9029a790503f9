"""Do the images look like photographs?  The field's realism figures, beside recognizability.

- :func:`colourfulness`: Hasler & Süsstrunk (2003), on the 0-255 scale: the spread plus 0.3 x
  the mean magnitude of the opponent channels rg = R - G and yb = (R + G) / 2 - B.  A grey
  image scores 0; typical photos 20-60.
- :func:`rms_contrast`: the standard deviation of the luminance (Rec. 601 weights) in [0, 1].
- :func:`kid`: Kernel Inception Distance (Bińkowski et al. 2018) between two sets of features,
  the unbiased polynomial-kernel MMD² averaged over random subsets, with its spread over the
  subsets.  torchmetrics' ``KernelInceptionDistance`` does the arithmetic; it takes a custom
  feature extractor, and here the features are the evaluator's pooled embedding, computed
  beforehand (so the extractor is the identity and the same reference features serve every run).

:func:`realism_references` picks the real photos a run is compared with: the photos of the
run's own classes in the shared folders (``tiny-imagenet``, ``nips17-dev``, ``imagenet-val-1k``),
else the whole ``imagenet-val-1k``.  Both sets are seen at the same size (:data:`REALISM_SIZE`,
centre crops of the photos) before the evaluator resizes them to its input.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_path
from .classifiers import Classifier
from .references import (
    add_file_stats,
    default_cache_dir,
    default_reference_dir,
    embed_batched,
    load_images,
    load_reference,
)

log = logging.getLogger(__name__)

REALISM_SIZE = 128  # generated images and reference photos are both compared at this size
PER_CLASS = 50  # at most this many reference photos of one class (tiny-imagenet's val count)
MIN_REFERENCES = 20  # fewer same-class photos than this: compare with the whole reference folder
LUMA = (0.299, 0.587, 0.114)


def colourfulness(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] -> [N] colourfulness (Hasler & Süsstrunk 2003, 0-255 scale)."""
    x = images.float() * 255
    r, g, b = x[:, 0].flatten(1), x[:, 1].flatten(1), x[:, 2].flatten(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return spread + 0.3 * mean


def rms_contrast(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] -> [N] RMS contrast: the standard deviation of the luminance."""
    w = torch.tensor(LUMA, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    luma = (images.float() * w).sum(1)
    return luma.flatten(1).std(1, unbiased=False)


def kid(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(mean, standard deviation over ``subsets``) of the KID between feature sets [N, D] and [M, D].

    Each subset draws ``min(subset_size, half the smaller set)`` rows of each set without
    replacement (half, so that subsets differ and their spread means something: it is the
    standard error of one subset's estimate).  Seeded: the same features give the same figures."""
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(int(subset_size), max(2, min(len(real), len(fake)) // 2))
    if min(len(real), len(fake)) < 2:
        raise ValueError(
            f"KID needs at least 2 images in each set, got {len(real)} real and {len(fake)} generated"
        )
    with warnings.catch_warnings():  # "will save all extracted features": they are given, not extracted
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=nn.Identity(), subsets=int(subsets), subset_size=n)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


# ---------------------------------------------------------------------------------------------
# reference photos


@dataclass
class RealismReference:
    files: list[Path]
    classes: list[int]
    note: str  # which photos, in words (for the summary)


def _shared_folders() -> list[Path]:
    """The folders of real labelled photos beside imagenet-val-1k (those that exist)."""
    base = default_reference_dir().parent
    names = ["tiny-imagenet/odd/val", "tiny-imagenet/even/train", "nips17-dev/odd", "nips17-dev/even"]
    return [base / n for n in names if (base / n).is_dir()] + [default_reference_dir()]


def realism_references(
    classes, folders=None, per_class: int = PER_CLASS, minimum: int = MIN_REFERENCES, within=None
) -> RealismReference:
    """The real photos of ``classes`` (ImageNet indices) in ``folders`` (default: the shared
    tiny-imagenet, nips17-dev and imagenet-val-1k), at most ``per_class`` of each, in a fixed
    order; fewer than ``minimum`` in all (or no class given): every photo of the last folder
    (of the classes ``within``, when given: quick runs and tests)."""
    if isinstance(folders, str | Path):
        folders = [folders]
    folders = [Path(f) for f in (folders or _shared_folders())]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"realism reference folder(s) not found: {', '.join(missing)} (realism_dir=...)"
        )
    wanted = sorted({int(c) for c in classes})
    by_class: dict[int, list[Path]] = {c: [] for c in wanted}
    used = []
    for folder in folders:
        try:
            ref = load_reference(folder).subset(wanted)
        except FileNotFoundError:  # a folder with no labelled photo
            continue
        if len(ref):
            base = default_reference_dir().parent
            used.append(str(folder.relative_to(base)) if folder.is_relative_to(base) else folder.name)
        for f, c in zip(ref.files, ref.classes):
            by_class[c].append(f)
    files, labels = [], []
    for c in wanted:
        for f in sorted(by_class[c])[:per_class]:
            files.append(f)
            labels.append(c)
    if len(files) >= minimum:
        have = sum(1 for c in wanted if by_class[c])
        note = (
            f"{len(files)} photos of the same {have} of {len(wanted)} classes "
            f"({', '.join(dict.fromkeys(used))})"
        )
        return RealismReference(files, labels, note)
    whole = load_reference(folders[-1], classes=within)
    why = f"only {len(files)} photos of the run's classes" if wanted else "no class targets"
    return RealismReference(
        list(whole.files), list(whole.classes), f"all {len(whole)} photos of {whole.folder.name} ({why})"
    )


# ---------------------------------------------------------------------------------------------
# features and figures


def pooled_features(clf: Classifier, images: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """The evaluator's pooled (penultimate) features [N, D] of [0, 1] images, unnormalized."""
    return embed_batched(clf, images, batch_size, desc=f"realism features ({clf.name})")[1]


def _cache_path(clf: Classifier, files: list[Path], size: int, cache_dir) -> Path:
    h = hashlib.sha1(f"{clf.name}|{clf.input_size}|{size}".encode())
    add_file_stats(h, ((f, f) for f in files))
    base = Path(cache_dir) if cache_dir else default_cache_dir()
    return base / "realism" / f"{clf.name}_{size}_{len(files)}_{h.hexdigest()[:12]}.pt"


def reference_figures(
    clf: Classifier,
    ref: RealismReference,
    size: int = REALISM_SIZE,
    batch_size: int = 32,
    cache_dir=None,
    use_cache: bool = True,
) -> dict:
    """{features, colourfulness, contrast} of the reference photos at ``size``, cached per
    evaluator and file list (unreadable photos are skipped and counted)."""
    path = _cache_path(clf, ref.files, size, cache_dir)
    if use_cache and path.exists():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged cache is computed again
            log.warning("unreadable realism cache %s (%s): computing it again", path, e)
    feats, colour, contrast, skipped = [], [], [], 0
    for s in range(0, len(ref.files), 256):  # a chunk of photos in memory at a time
        x, bad = load_images(ref.files[s : s + 256], size)
        skipped += len(bad)
        if x is None:
            continue
        feats.append(pooled_features(clf, x, batch_size))
        colour.append(colourfulness(x))
        contrast.append(rms_contrast(x))
    if not feats:
        raise FileNotFoundError(f"none of the {len(ref.files)} reference photos could be read")
    out = {
        "features": torch.cat(feats),
        "colourfulness": torch.cat(colour),
        "contrast": torch.cat(contrast),
        "skipped": skipped,
    }
    if use_cache:
        try:
            with atomic_path(path) as tmp:
                torch.save(out, tmp)
        except OSError as e:
            log.warning("cannot write the realism cache %s (%s): not cached", path, e.strerror or e)
    return out


def at_size(images: torch.Tensor, size: int = REALISM_SIZE) -> torch.Tensor:
    """[N, 3, H, W] in [0, 1] resized to ``size`` x ``size`` (antialiased bicubic, clamped)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images.float(), size=size, mode="bicubic", antialias=True).clamp(0, 1)


def median(values: torch.Tensor) -> float:
    return float(statistics.median(values.tolist())) if len(values) else math.nan


def realism(
    clf: Classifier, images: torch.Tensor, ref_figures: dict, batch_size: int = 32, seed: int = 0
) -> dict:
    """The realism summary of generated images [N, 3, H, W] (resized to the comparison size here)
    against a reference's :func:`reference_figures`: KID x 1000 (± its spread over subsets),
    and the colourfulness and contrast medians of both sets."""
    images = at_size(images)
    feats = pooled_features(clf, images, batch_size)
    out = {"kid_x1000": math.nan, "kid_se_x1000": math.nan}
    if len(images) >= 2:
        mean, std = kid(ref_figures["features"], feats, seed=seed)
        out = {"kid_x1000": 1000 * mean, "kid_se_x1000": 1000 * std}
    return {
        **out,
        "colourfulness": median(colourfulness(images)),
        "contrast": median(rms_contrast(images)),
        "ref_colourfulness": median(ref_figures["colourfulness"]),
        "ref_contrast": median(ref_figures["contrast"]),
    }
