"""Images for the denoising autoencoder: a LightningDataModule over image folders.

Three layouts (``layout=``):

- ``imagenet``: ``root/train/<wnid>/*.JPEG`` (or ``root`` = the train folder itself),
  restricted to a range or list of ImageNet-1k class indices (dogs: 151-268).
- ``imagefolder``: ``root/<class>/*`` (Imagewoof, Imagenette, Stanford Dogs ``Images/``);
  ``subdir`` picks e.g. ``train`` below root.
- ``folder``: every image below ``root`` (recursively), e.g. the shared 1000 photos.

Labels are not needed by the DAE; items are [0, 1] RGB tensors.  Unreadable files
are found at setup (``check="decode"`` decodes each file at reduced JPEG scale,
``"header"`` only opens it), skipped, counted and reported once; a file that
still fails later is replaced by another one.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.utilities import rank_zero_warn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from genviz.images import IMAGE_EXTENSIONS, to_rgb8
from genviz.options import int_value

README_HINT = "see data/README.md for where to get the datasets and how to point data.root at them"


class DataRootError(FileNotFoundError):
    """The data root is missing, or holds no usable image (or too few to split)."""


class DataConfigError(ValueError):
    """A ``data.*`` config value is out of range; the message names the key."""


def _int_option(key: str, value, minimum: int, allow_none: bool = False) -> int | None:
    try:
        return int_value(f"data.{key}", value, minimum, allow_none)
    except ValueError:
        raise DataConfigError(f"data.{key} must be an integer >= {minimum}, got {value!r}") from None


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def imagenet_wnids(classes: Sequence[int] | str) -> list[str]:
    """WordNet ids of ImageNet-1k classes, offline (timm's class table).

    ``classes``: a list of indices, a ``"first-last"`` inclusive range string, or ``"even"`` /
    ``"odd"`` (the classes of even / odd index: genviz's held-out protocol trains decoders on
    the even ones and measures them on the odd ones).
    """
    from timm.data import ImageNetInfo

    if isinstance(classes, str):
        if classes in ("even", "odd"):
            classes = range(classes == "odd", 1000, 2)
        else:
            try:
                lo, hi = (int(x) for x in classes.split("-"))
            except ValueError:
                raise DataConfigError(
                    f"data.classes must be a list of indices, 'first-last', 'even' or 'odd', got {classes!r}"
                ) from None
            classes = range(lo, hi + 1)
    try:
        classes = [int(i) for i in classes]
    except (TypeError, ValueError):
        raise DataConfigError(f"data.classes must be ImageNet class indices, got {classes!r}") from None
    wrong = [i for i in classes if not 0 <= i < 1000]
    if wrong:
        raise DataConfigError(f"data.classes: {wrong[:5]} out of range, ImageNet-1k classes are 0-999")
    info = ImageNetInfo()
    return [info.index_to_label_name(i) for i in classes]


def list_images(root: str | os.PathLike, layout: str = "folder", classes=None, subdir=None) -> list[Path]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataRootError(f"data root {str(root)!r} does not exist or is not a directory; {README_HINT}")
    if subdir:
        root = root / subdir
        if not root.is_dir():
            raise DataRootError(f"data folder {str(root)!r} does not exist; {README_HINT}")
    if layout == "folder":
        files = [p for p in root.rglob("*") if p.is_file() and _is_image(p)]
        if classes is not None:  # ImageNet classes, by a wnid prefix of the file or folder name
            wanted = set(imagenet_wnids(classes))
            files = [p for p in files if p.name.split("_")[0] in wanted or p.parent.name in wanted]
    elif layout in ("imagefolder", "imagenet"):
        if layout == "imagenet" and (root / "train").is_dir():
            root = root / "train"
        dirs = sorted(d for d in root.iterdir() if d.is_dir())
        if layout == "imagenet" and classes is not None:
            wanted = set(imagenet_wnids(classes))
            dirs = [d for d in dirs if d.name in wanted]
        elif classes is not None:
            wanted = {str(c) for c in classes}
            dirs = [d for d in dirs if d.name in wanted]
        files = [p for d in dirs for p in d.rglob("*") if p.is_file() and _is_image(p)]
    else:
        raise DataConfigError(f"data.layout must be 'folder', 'imagefolder' or 'imagenet', got {layout!r}")
    if not files:
        what = "class folders with images" if layout != "folder" else "images"
        raise DataRootError(f"no {what} found under {str(root)!r} (layout={layout!r}); {README_HINT}")
    return sorted(files)


def wnid_of(path: Path) -> str:
    """The WordNet id a photo is filed under: its name's prefix (``n01443537_12.JPEG``) or, failing
    that, its folder's name (``train/n01443537/images/...`` is read from the nearest ``n…`` folder)."""
    head = path.name.split("_")[0]
    if head.startswith("n") and head[1:].isdigit():
        return head
    for parent in path.parents:
        if parent.name.startswith("n") and parent.name[1:].isdigit():
            return parent.name
    return path.parent.name


def is_sharp(path: Path, size: int) -> bool:
    """The photo's shorter side (read from its header) is at least ``size`` px."""
    with Image.open(path) as im:
        return min(im.size) >= size


def _open_rgb(path: Path, draft: int | None = None) -> Image.Image:
    with Image.open(path) as im:
        if draft:  # JPEG: decode at the smallest DCT scale that is still >= draft px
            im.draft("RGB", (draft, draft))
        return to_rgb8(im)


def check_images(files: Sequence[Path], mode: str = "decode") -> tuple[list[Path], list[Path]]:
    """Split files into (readable, unreadable)."""
    if mode == "none":
        return list(files), []
    good, bad = [], []
    for p in files:
        try:
            with Image.open(p) as im:
                if mode == "decode":
                    im.draft("RGB", (32, 32))
                    im.load()
            good.append(p)
        except Exception:
            bad.append(p)
    return good, bad


class ImageFiles(Dataset):
    """Photos as [0, 1] tensors; with ``sharp`` (one flag per file, :func:`is_sharp`) each item is
    ``(pixels, sharp)``: a 64 px photo upsampled to 128 px has no detail above 64 px to learn from."""

    def __init__(
        self,
        files: Sequence[Path],
        transform,
        draft: int | None = None,
        cache: bool = False,
        sharp: Sequence[bool] | None = None,
    ):
        self.files, self.transform, self.draft = list(files), transform, draft
        self._cache: dict[int, Image.Image] | None = {} if cache else None
        self.sharp = None if sharp is None else list(sharp)
        self.failed = 0

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, i: int) -> Image.Image:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        im = _open_rgb(self.files[i], self.draft)
        if self._cache is not None:
            if self.draft:  # keep it small: shorter side = the resize size
                im = T.functional.resize(im, self.draft, antialias=True)
            self._cache[i] = im
        return im

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        for attempt in range(10):
            j = i if attempt == 0 else random.randrange(len(self.files))
            try:
                pixels = self.transform(self._load(j))
                if self.sharp is None:
                    return pixels
                return pixels, torch.tensor(self.sharp[j])
            except Exception as e:  # truncated or corrupt file that passed the setup check
                self.failed += 1
                if self.failed == 1:
                    warnings.warn(f"unreadable image skipped: {self.files[j]} ({e})", stacklevel=2)
        raise RuntimeError("10 unreadable images in a row; check the dataset")


class ImageDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str | Sequence[str],
        layout: str = "folder",
        classes: Sequence[int] | str | None = None,
        subdir: str | None = None,
        image_size: int = 224,
        resize: int | None = None,
        batch_size: int = 32,
        num_workers: int = 4,
        val_fraction: float = 0.05,
        val_size: int | None = None,
        seed: int = 0,
        flip: bool = True,
        crop_scale: Sequence[float] | None = None,
        color_jitter: float = 0.0,
        check: str = "decode",
        cache: bool = False,
        max_images: int | None = None,
        native: bool = False,
        sharp_fraction: float | None = None,
    ):
        super().__init__()
        from hydra.utils import to_absolute_path  # works with or without a Hydra run

        # one folder, or several read as one data set (e.g. all the even-class photos of ../shared)
        roots = [root] if isinstance(root, str | os.PathLike) else list(root or [])
        if not roots:
            raise DataRootError(f"data.root is empty; {README_HINT}")
        self.roots = [to_absolute_path(str(r)) for r in roots]
        self.root = self.roots[0] if len(self.roots) == 1 else ", ".join(self.roots)
        if layout not in ("folder", "imagefolder", "imagenet"):
            raise DataConfigError(
                f"data.layout must be 'folder', 'imagefolder' or 'imagenet', got {layout!r}"
            )
        if check not in ("decode", "header", "none"):
            raise DataConfigError(f"data.check must be 'decode', 'header' or 'none', got {check!r}")
        self.layout, self.classes, self.subdir = layout, classes, subdir
        self.image_size = _int_option("image_size", image_size, 1)
        resize = _int_option("resize", resize or None, 1, allow_none=True)
        self.resize = resize or round(self.image_size * 256 / 224)
        if self.resize < self.image_size and not crop_scale:
            raise DataConfigError(
                f"data.resize ({self.resize}) must be >= the image size ({self.image_size})"
            )
        batch_size = _int_option("batch_size", batch_size, 1)
        num_workers = _int_option("num_workers", num_workers, 0)
        val_size = _int_option("val_size", val_size, 1, allow_none=True)
        max_images = _int_option("max_images", max_images or None, 2, allow_none=True)
        try:
            val_fraction = float(val_fraction)
        except (TypeError, ValueError):
            val_fraction = float("nan")
        if not 0 < val_fraction < 1:
            raise DataConfigError(f"data.val_fraction must be a number in (0, 1), got {val_fraction!r}")
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.val_size, self.seed = val_fraction, val_size, seed
        self.flip, self.check, self.cache, self.max_images = flip, check, cache, max_images
        self.crop_scale = tuple(float(v) for v in crop_scale) if crop_scale else None
        self.color_jitter = float(color_jitter)
        self.native = bool(native)
        if sharp_fraction is not None and not (self.native and 0 < float(sharp_fraction) < 1):
            raise DataConfigError(
                f"data.sharp_fraction must be a number in (0, 1) with data.native=true, got {sharp_fraction!r}"
            )
        self.sharp_fraction = None if sharp_fraction is None else float(sharp_fraction)
        self.unreadable: list[Path] = []
        self.train_set = self.val_set = None

    def transforms(self, train: bool):
        """Evaluation: resize + centre crop.  Training: resize + random crop, or with ``crop_scale``
        a random resized crop over that range of areas (many distinct views of few photos),
        then flips and colour jitter (brightness, contrast, saturation and a quarter as much hue)."""
        if not train:
            return T.Compose(
                [T.Resize(self.resize, antialias=True), T.CenterCrop(self.image_size), T.ToTensor()]
            )
        if self.crop_scale:
            t = [T.RandomResizedCrop(self.image_size, scale=self.crop_scale, antialias=True)]
        else:
            t = [T.Resize(self.resize, antialias=True), T.RandomCrop(self.image_size)]
        if self.flip:
            t.append(T.RandomHorizontalFlip())
        if self.color_jitter > 0:
            j = self.color_jitter
            t.append(T.ColorJitter(j, j, j, j / 4))
        return T.Compose([*t, T.ToTensor()])

    def split(self) -> tuple[list[Path], list[Path]]:
        """Readable files, split deterministically by ``seed`` into (train, val)."""
        files = sorted(p for r in self.roots for p in list_images(r, self.layout, self.classes, self.subdir))
        files, self.unreadable = check_images(files, self.check)
        if self.unreadable:
            rank_zero_warn(
                f"{len(self.unreadable)} unreadable image file(s) under {self.root} skipped "
                f"(first: {self.unreadable[0]})"
            )
        if not files:
            raise DataRootError(f"no readable image under {self.root!r}; {README_HINT}")
        if len(files) < 2:
            raise DataRootError(
                f"only 1 readable image under {self.root!r}: training needs at least 2, one to train "
                "on and one held out for validation (a copy of the image would make validation = training)"
            )
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(self.seed)).tolist()
        files = [files[i] for i in order]
        if self.max_images:
            files = files[: self.max_images]
        n_val = self.val_size if self.val_size is not None else round(len(files) * self.val_fraction)
        if n_val > len(files) - 1:
            rank_zero_warn(
                f"data.val_size={n_val} leaves no training image out of {len(files)}; validating on "
                f"{len(files) - 1} and training on 1"
            )
        n_val = min(max(n_val, 1), len(files) - 1)
        return files[n_val:], files[:n_val]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train, val = self.split()

        def sharp(files):  # read once, from the headers: the items and the sampler share it
            return [is_sharp(p, self.image_size) for p in files] if self.native else None

        self.train_set = ImageFiles(train, self.transforms(True), self.resize, self.cache, sharp(train))
        self.val_set = ImageFiles(val, self.transforms(False), self.resize, self.cache, sharp(val))

    def sharp_sampler(self, ds: ImageFiles) -> torch.utils.data.WeightedRandomSampler | None:
        """With ``sharp_fraction``: draw the photos at least ``image_size`` px (``ds.sharp``) as that
        fraction of every epoch, the small ones as the rest (the few large photos are what teaches
        detail above the small ones' resolution)."""
        if self.sharp_fraction is None:
            return None
        sharp = torch.tensor(ds.sharp)
        n_sharp = int(sharp.sum())
        if n_sharp in (0, len(sharp)):
            rank_zero_warn(
                f"data.sharp_fraction: {n_sharp} of {len(sharp)} photos are sharp; sampling uniformly"
            )
            return None
        f = self.sharp_fraction
        weights = torch.where(sharp, f / n_sharp, (1 - f) / (len(sharp) - n_sharp)).double()
        g = torch.Generator().manual_seed(self.seed)
        return torch.utils.data.WeightedRandomSampler(weights, len(ds), replacement=True, generator=g)

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        sampler = self.sharp_sampler(ds) if shuffle else None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=shuffle and len(ds) >= self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)
