"""Reference images: a folder of real labelled images and their embeddings under an evaluator.

``load_reference`` reads a folder (three layouts, see there) into a :class:`ReferenceSet`;
``reference_embeddings`` embeds it once per evaluator (the penultimate layer, L2-normalized),
batched, and caches the result in ``$GENVIZ_CACHE`` (default ``~/.cache/genviz``) under
``embeddings/<evaluator>_<folder>_<count>_<hash>.pt``, keyed by the evaluator, its input size
and the folder's file list.  ``forward_embed`` / ``embed_batched`` give (logits, embedding)
of any images.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_path, regular_file
from .classifiers import Classifier
from .images import EVAL_CROP, IMAGE_EXTENSIONS, load_image

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FOLDER = "data/imagenet-val-1k"


class ReferenceFolderError(FileNotFoundError):
    pass


def model_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (cpu for an empty module)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------------
# reference folder


def default_reference_dir() -> Path:
    """``$GENVIZ_SHARED/data/imagenet-val-1k``, else ``../shared/...`` beside the repository."""
    shared = os.environ.get("GENVIZ_SHARED")
    base = Path(shared) if shared else REPO_ROOT.parent / "shared"
    return base / SHARED_FOLDER


def resolve_folder(path: str | os.PathLike | None) -> Path:
    """A reference folder path: absolute, relative to the cwd, or relative to the repository root."""
    if path is None or str(path) in ("", "None", "null"):
        folder = default_reference_dir()
    else:
        folder = Path(os.path.expanduser(str(path)))
        if not folder.is_absolute() and not folder.exists() and (REPO_ROOT / folder).exists():
            folder = REPO_ROOT / folder
    if not folder.is_dir():
        raise ReferenceFolderError(
            f"reference folder {str(folder)!r} does not exist.\n"
            f"Point to it with reference_dir=/path/to/imagenet-val-1k, or set GENVIZ_SHARED to the "
            f"directory holding {SHARED_FOLDER} (default: ../shared beside the repository)."
        )
    return folder


@dataclass
class ReferenceSet:
    """Real images with their class indices: ``files[i]`` shows class ``classes[i]``."""

    folder: Path
    files: list[Path]
    classes: list[int]

    def __len__(self) -> int:
        return len(self.files)

    def of_class(self, c: int) -> list[Path]:
        return [f for f, k in zip(self.files, self.classes) if k == c]

    def subset(self, classes) -> ReferenceSet:
        keep = set(int(c) for c in classes)
        pairs = [(f, c) for f, c in zip(self.files, self.classes) if c in keep]
        return ReferenceSet(self.folder, [f for f, _ in pairs], [c for _, c in pairs])


def _wnid_lookup(class_names) -> dict[str, int]:
    return {w: i for i, w in enumerate(getattr(class_names, "wnids", None) or [])}


def read_index_tsv(path: Path, n_classes: int) -> list[tuple[str, int]]:
    """(file, class index) of each row of a reference folder's ``index.tsv`` (tab-separated,
    a header with at least ``index`` and ``file``).  A missing column, an index that is not an
    integer in 0..n_classes-1, or a file path that is empty, absolute or leaves the folder is
    one :class:`ReferenceFolderError` naming the file, the line and the field."""
    try:
        text = regular_file(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ReferenceFolderError(f"{path} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    missing = [c for c in ("index", "file") if c not in (reader.fieldnames or [])]
    if missing:
        raise ReferenceFolderError(
            f"{path}: no {missing[0]!r} column (the header is {reader.fieldnames}); expected the "
            "tab-separated columns index, wnid, file"
        )
    rows = []
    for row in reader:
        where = f"{path} line {reader.line_num}"
        index, file = (row.get("index") or "").strip(), (row.get("file") or "").strip()
        if not re.fullmatch(r"\d+", index) or int(index) >= n_classes:
            raise ReferenceFolderError(f"{where}: index {index!r} is not a class index 0..{n_classes - 1}")
        if not file or Path(file).is_absolute() or ".." in Path(file).parts:
            raise ReferenceFolderError(f"{where}: file {file!r} is not a path inside the folder")
        rows.append((file, int(index)))
    return rows


def load_reference(folder, class_names=None, classes=None) -> ReferenceSet:
    """Read a reference folder. Three layouts:

    - flat with ``index.tsv`` (columns index, wnid, file), like the shared imagenet-val-1k;
    - one subfolder per class named by WordNet id or class index (ImageFolder);
    - flat files named ``<wnid>_anything.ext``.

    ``classes`` restricts it to those class indices (tests, quick runs).
    """
    folder = resolve_folder(folder)
    files: list[Path] = []
    labels: list[int] = []
    index = folder / "index.tsv"
    wnids = _wnid_lookup(class_names) if class_names is not None else {}
    if not wnids:
        from .classes import imagenet

        wnids = _wnid_lookup(imagenet())
    if index.exists():
        n = len(class_names) if class_names is not None else len(wnids)
        for file, label in read_index_tsv(index, n):
            files.append(folder / file)
            labels.append(label)
    else:
        subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
        if subdirs:
            for d in subdirs:
                c = wnids.get(d.name, int(d.name) if d.name.isdigit() else None)
                if c is None:
                    continue
                for f in sorted(d.iterdir()):
                    if f.suffix.lower() in IMAGE_EXTENSIONS:
                        files.append(f)
                        labels.append(c)
        else:
            for f in sorted(folder.iterdir()):
                m = re.match(r"(n\d{8})", f.name)
                if f.suffix.lower() in IMAGE_EXTENSIONS and m and m.group(1) in wnids:
                    files.append(f)
                    labels.append(wnids[m.group(1)])
    if not files:
        raise ReferenceFolderError(
            f"no labelled images in {folder}: expected index.tsv (index, wnid, file), one subfolder "
            f"per WordNet id, or files named <wnid>_*.JPEG"
        )
    ref = ReferenceSet(folder, files, labels)
    return ref.subset(classes) if classes is not None else ref


# ---------------------------------------------------------------------------------------------
# images


def load_images(paths, size: int | None = None) -> tuple[torch.Tensor | None, list[int]]:
    """Stack the readable images (with ``size``: the ImageNet evaluation crop, as the
    evaluators see them); return (batch, indices of the unreadable ones)."""
    out, bad = [], []
    for i, p in enumerate(paths):
        try:
            out.append(load_image(p, size, crop_fraction=EVAL_CROP))
        except Exception:  # truncated, not an image, permission denied...: skipped and counted
            bad.append(i)
    return (torch.stack(out) if out else None), bad


# ---------------------------------------------------------------------------------------------
# embeddings


def _last_linear(model: nn.Module) -> nn.Linear | None:
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


@torch.no_grad()
def forward_embed(clf: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch -> (logits [B, K], penultimate embedding [B, D]).

    The embedding is the ``pool`` layer when the classifier names one (efficientnet_lite:
    the global-pool output), else the input of its last linear layer."""
    x = clf.fit_input(x.to(model_device(clf)))
    if "pool" in clf.aliases:
        with clf.recording(["pool"]) as store:
            logits = clf.run(x, store)
        return logits, store["pool"].post.flatten(1)
    fc = _last_linear(clf.model)
    if fc is None:
        raise ValueError(f"classifier {clf.name!r}: no 'pool' layer alias and no linear layer to embed with")
    grabbed = {}
    handle = fc.register_forward_pre_hook(lambda m, inp: grabbed.__setitem__("x", inp[0]))
    try:
        logits = clf.run(x)
    finally:
        handle.remove()
    return logits, grabbed["x"].flatten(1)


@torch.no_grad()
def embed_batched(
    clf: Classifier, images: torch.Tensor, batch_size: int = 32, desc: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, embeddings) of a tensor of images, in batches, with a progress bar."""
    logits, embs = [], []
    starts = range(0, len(images), batch_size)
    for s in tqdm(starts, desc=desc or f"{clf.name}", disable=len(starts) < 2, leave=False):
        lg, em = forward_embed(clf, images[s : s + batch_size])
        logits.append(lg.float().cpu())
        embs.append(em.float().cpu())
    return torch.cat(logits), torch.cat(embs)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GENVIZ_CACHE", Path.home() / ".cache" / "genviz"))


def add_file_stats(h, entries) -> None:
    """Feed ``(label, path)`` pairs to the hash ``h`` with each file's size and mtime (or
    "missing"): a cache keyed by it is recomputed when a file changes."""
    for label, f in entries:
        try:
            st = f.stat()
            h.update(f"{label}|{st.st_size}|{int(st.st_mtime)}".encode())
        except OSError:
            h.update(f"{label}|missing".encode())


def _cache_key(clf: Classifier, ref: ReferenceSet) -> str:
    h = hashlib.sha1()
    h.update(f"{clf.name}|{clf.input_size}|{ref.folder.resolve()}".encode())
    add_file_stats(h, ((f"{f.name}|{c}", f) for f, c in zip(ref.files, ref.classes)))
    return f"{clf.name}_{ref.folder.name}_{len(ref)}_{h.hexdigest()[:12]}"


@dataclass
class ReferenceEmbeddings:
    """Penultimate embeddings of a reference set under one evaluator (unit-normalized)."""

    evaluator: str
    files: list[Path]
    classes: torch.Tensor  # [R] long
    embeddings: torch.Tensor  # [R, D] float, L2-normalized
    skipped: list[Path] = field(default_factory=list)


@torch.no_grad()
def reference_embeddings(
    clf: Classifier,
    ref: ReferenceSet,
    batch_size: int = 32,
    cache_dir=None,
    use_cache: bool = True,
) -> ReferenceEmbeddings:
    """Embed every readable reference image once; cached to ``cache_dir`` keyed by the
    evaluator, its input size and the folder's file list. Unreadable images are skipped,
    counted and reported in one warning."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / "embeddings" / f"{_cache_key(clf, ref)}.pt"
    out = None
    if use_cache and path.exists():
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            out = ReferenceEmbeddings(
                clf.name, [Path(f) for f in d["files"]], d["classes"], d["embeddings"], d["skipped"]
            )
            log.info("reference embeddings of %s from cache %s", clf.name, path)
        except Exception as e:  # truncated, garbage, another format: computed again (and re-cached)
            log.warning("unreadable reference embeddings cache %s (%s): computing them again", path, e)
            out = None
    if out is None:
        files, classes, embs, skipped = [], [], [], []
        starts = range(0, len(ref), batch_size)
        for s in tqdm(starts, desc=f"embedding {ref.folder.name} with {clf.name}", leave=False):
            chunk = ref.files[s : s + batch_size]
            x, bad = load_images(chunk, clf.input_size)
            skipped += [chunk[i] for i in bad]
            if x is None:
                continue
            ok = [i for i in range(len(chunk)) if i not in set(bad)]
            _, em = forward_embed(clf, x)
            embs.append(F.normalize(em.float(), dim=1).cpu())
            files += [chunk[i] for i in ok]
            classes += [ref.classes[s + i] for i in ok]
        if not embs:
            raise ReferenceFolderError(f"none of the {len(ref)} images in {ref.folder} could be read")
        out = ReferenceEmbeddings(
            clf.name, files, torch.tensor(classes, dtype=torch.long), torch.cat(embs), skipped
        )
        if use_cache:
            try:  # atomically: a temporary file beside it, then a rename
                with atomic_path(path) as tmp:
                    torch.save(
                        {
                            "files": [str(f) for f in files],
                            "classes": out.classes,
                            "embeddings": out.embeddings,
                            "skipped": [str(f) for f in skipped],
                        },
                        tmp,
                    )
            except OSError as e:  # the embeddings are computed: use them, uncached
                log.warning(
                    "cannot write the reference embeddings cache %s (%s): not cached (cache_dir=...)",
                    path,
                    e.strerror or e,
                )
    if out.skipped:
        log.warning(
            "skipped %d unreadable reference image(s) in %s (first: %s)",
            len(out.skipped),
            ref.folder,
            out.skipped[0],
        )
    return out
