"""What are the generated images worth? Score them with independent classifiers.

For every image and every evaluator classifier (not the one that generated it):

- ``top1`` / ``top5``: is the intended class the evaluator's first / among its
  first five guesses (compound targets: ``top1`` = the first guess is one of
  their classes, ``top5`` = *all* their classes are in the top five);
- ``prob``: the evaluator's softmax probability of the target (mean over the
  classes of a compound target), ``class_rank`` its rank among all classes;
- ``plausibility``: the rank (1 = nearest) of the target class's real image among
  all images of a reference folder, by cosine similarity to the generated image
  in the evaluator's penultimate embedding. Rank 1 means the generated image
  looks, to the evaluator, more like a real example of its class than like any
  other real image. The reference embeddings are computed once per evaluator and
  folder, batched, and cached to a file.

``evaluate_run(run_dir, ...)`` reads a visualize run (``results.json`` + PNGs)
and writes ``evaluation.csv`` and ``evaluation.md`` into it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_path, save_png_atomic, write_bytes_atomic, write_text_atomic
from .classifiers import Classifier, build_classifier
from .engine import STATUS_NAN, STATUS_OK
from .images import load_image as _load_image
from .options import int_value

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FOLDER = "data/imagenet-val-1k"


class ReferenceFolderError(FileNotFoundError):
    pass


class RunFileError(ValueError):
    """A run's results.json that cannot be read as one (the message names the file)."""


# ---------------------------------------------------------------------------------------------
# result status: a non-finite number is never ok

FINITE_FIELDS = ("activation", "optimized_activation", "prob")


def _finite(value) -> bool:
    """None (no such number, e.g. the prob of a channel target) passes; anything else must be a
    finite number."""
    if value is None:
        return True
    if isinstance(value, bool):
        return True
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def result_status(r: dict) -> str:
    """The status of one result row: ``nan`` when any of its numbers (activation, optimized
    activation, prob, probs) is not finite, whatever status it records (rows written before the
    ``nan`` status existed said ``ok``); else its recorded status (``ok`` when it has none)."""
    numbers = [r.get(k) for k in FINITE_FIELDS]
    probs = r.get("probs")
    if isinstance(probs, list):
        numbers += probs
    if not all(_finite(v) for v in numbers):
        return STATUS_NAN
    return r.get("status", STATUS_OK)


def result_ok(r: dict) -> bool:
    """True for a row whose image is a result: status ok and every number finite."""
    return result_status(r) == STATUS_OK


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
        with open(index, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                files.append(folder / row["file"])
                labels.append(int(row["index"]))
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


def load_image(path, size: int | None = None) -> torch.Tensor:
    """An image file -> [3, H, W] in [0, 1]; with ``size``: the usual ImageNet eval crop."""
    return _load_image(path, size, crop_fraction=0.875)


def load_images(paths, size: int | None = None) -> tuple[torch.Tensor | None, list[int]]:
    """Stack the readable images; return (batch, indices of the unreadable ones)."""
    out, bad = [], []
    for i, p in enumerate(paths):
        try:
            out.append(load_image(p, size))
        except Exception:  # truncated, not an image, permission denied...: skipped and counted
            bad.append(i)
    return (torch.stack(out) if out else None), bad


def save_png(img: torch.Tensor, path) -> None:
    arr = (img.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    save_png_atomic(Image.fromarray(arr), path)


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


def _cache_key(clf: Classifier, ref: ReferenceSet) -> str:
    h = hashlib.sha1()
    h.update(f"{clf.name}|{clf.input_size}|{ref.folder.resolve()}".encode())
    for f, c in zip(ref.files, ref.classes):
        try:
            st = f.stat()
            h.update(f"{f.name}|{c}|{st.st_size}|{int(st.st_mtime)}".encode())
        except OSError:
            h.update(f"{f.name}|{c}|missing".encode())
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


# ---------------------------------------------------------------------------------------------
# scores


def plausibility_ranks(
    emb: torch.Tensor, refs: ReferenceEmbeddings, targets: list[list[int]]
) -> tuple[list[float], torch.Tensor]:
    """Rank (1 = most similar) of the best-ranked reference image of the target's classes
    among all reference images, by cosine similarity; NaN when the reference set has no image
    of those classes. Also returns the similarity matrix [N, R]."""
    sims = F.normalize(emb.float(), dim=1) @ refs.embeddings.T
    # rank of every reference image in its row: 1 + number of strictly more similar references
    order = sims.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(1, sims.shape[1] + 1).expand_as(order).contiguous())
    out = []
    for i, cls in enumerate(targets):
        mask = torch.isin(refs.classes, torch.tensor(cls, dtype=torch.long)) if cls else None
        if mask is None or not mask.any():
            out.append(math.nan)
        else:
            out.append(float(ranks[i][mask].min()))
    return out, sims


def score(
    clf: Classifier,
    images: torch.Tensor,
    targets: list[list[int]],
    refs: ReferenceEmbeddings | None = None,
    batch_size: int = 32,
    top: int = 5,
    nearest: int = 3,
) -> list[dict]:
    """Score images [N, 3, H, W] in [0, 1] against their target classes with the evaluator ``clf``.

    ``targets[i]``: class indices of image i's target (several for a compound target, none
    for a channel target: then only its top guesses and nearest references are reported)."""
    logits, emb = embed_batched(clf, images, batch_size, desc=f"scoring with {clf.name}")
    probs = logits.softmax(-1)
    topk = probs.topk(top, dim=1).indices
    # rank of every class in every row (1 = the evaluator's first guess)
    class_rank = probs.argsort(dim=1, descending=True).argsort(dim=1) + 1
    if refs is not None:
        plaus, sims = plausibility_ranks(emb, refs, targets)
        near = sims.topk(min(nearest, sims.shape[1]), dim=1).indices
    else:
        plaus, near = [math.nan] * len(images), None
    rows = []
    names = clf.classes
    for i, cls in enumerate(targets):
        row = {
            "evaluator": clf.name,
            "top1_class": names.name(int(topk[i, 0])),
            "top5_classes": "; ".join(names.name(int(c)) for c in topk[i]),
        }
        if cls:
            t = torch.tensor(cls, dtype=torch.long)
            row.update(
                top1=bool(int(topk[i, 0]) in cls),
                top5=bool(torch.isin(t, topk[i]).all()),
                prob=float(probs[i, t].mean()),
                class_rank=int(class_rank[i, t].max()),
            )
        else:
            row.update(top1=None, top5=None, prob=math.nan, class_rank=None)
        row["plausibility"] = plaus[i]
        if near is not None:
            row["nearest"] = "; ".join(refs.files[int(j)].name for j in near[i])
            row["nearest_classes"] = "; ".join(names.name(int(refs.classes[int(j)])) for j in near[i])
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Means over the rows with a class target: top-1 / top-5 rate, mean prob, plausibility."""
    cls_rows = [r for r in rows if r.get("top1") is not None]
    plaus = [r["plausibility"] for r in cls_rows if not math.isnan(r["plausibility"])]
    n = len(cls_rows)
    return {
        "n": n,
        "top1": sum(r["top1"] for r in cls_rows) / n if n else math.nan,
        "top5": sum(r["top5"] for r in cls_rows) / n if n else math.nan,
        "prob": sum(r["prob"] for r in cls_rows) / n if n else math.nan,
        "plausibility_median": float(statistics.median(plaus)) if plaus else math.nan,
        "plausibility_mean": sum(plaus) / len(plaus) if plaus else math.nan,
        "plausibility_top1": sum(p == 1 for p in plaus) / len(plaus) if plaus else math.nan,
    }


# ---------------------------------------------------------------------------------------------
# run directories


def read_run(run_dir) -> tuple[dict, list[dict]]:
    """(config, results) of a visualize run's results.json; a file that is not one (truncated,
    not JSON, a list...) is a :class:`RunFileError` naming it."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run_dir must be a visualize output directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not a results.json (not text)") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path} is not valid JSON (truncated, or still being written?): {e}") from None
    except OSError as e:
        raise RunFileError(f"{path} cannot be read ({e.strerror or e})") from None
    expected = 'a visualize results.json is an object with a "results" list'
    if not isinstance(data, dict):
        raise RunFileError(f"{path} holds a JSON {type(data).__name__}; {expected}")
    results = data.get("results")
    if not isinstance(results, list):
        found = "no" if results is None else f"a {type(results).__name__} as"
        raise RunFileError(f'{path} has {found} "results"; {expected}')
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            raise RunFileError(f"{path}: results[{i}] is a {type(r).__name__}, not an object; {expected}")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise RunFileError(f'{path}: "config" is a {type(config).__name__}, not an object')
    return config, results


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) >= 1:
            return str(int(v))
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


ROW_COLUMNS = [
    "target",
    "image",
    "evaluator",
    "activation",
    "top1",
    "top5",
    "prob",
    "class_rank",
    "plausibility",
    "top1_class",
    "nearest_classes",
]
SUMMARY_COLUMNS = [
    "evaluator",
    "n",
    "top1",
    "top5",
    "prob",
    "plausibility_median",
    "plausibility_mean",
    "plausibility_top1",
    "not_ok",
]


def evaluate_run(
    run_dir,
    evaluators=("efficientnet_lite1", "efficientnet_lite2"),
    reference_dir=None,
    reference_classes=None,
    batch_size: int = 32,
    cache_dir=None,
    use_cache: bool = True,
    nearest: int = 3,
) -> tuple[list[dict], list[dict]]:
    """Score every ``status: ok`` image of a visualize run; write evaluation.csv / .md.
    A row with a non-finite activation or probability is never scored, whatever its status
    (it counts in ``not_ok``).

    Returns (rows, summaries): one row per image and evaluator, one summary per evaluator."""
    run_dir = Path(run_dir)
    batch_size = int_value("batch_size", batch_size)
    nearest = int_value("nearest", nearest, 0)
    config, results = read_run(run_dir)
    n_all = len(results)
    nonfinite = sum(result_status(r) == STATUS_NAN for r in results)
    results = [r for r in results if result_ok(r) and isinstance(r.get("image"), str) and r["image"]]
    excluded = n_all - len(results)
    if excluded:
        log.warning("%d result(s) without status ok (e.g. dead targets) are not scored", excluded)
    if nonfinite:
        log.warning("%d result(s) with a non-finite activation (status nan) are not scored", nonfinite)
    if not results:
        raise ValueError(f"{run_dir}/results.json lists no generated images")
    images, bad = load_images([run_dir / r["image"] for r in results])
    if bad:
        raise FileNotFoundError(f"unreadable generated image(s): {[results[i]['image'] for i in bad]}")
    generator = config.get("classifier", {})
    generator = generator.get("name", generator) if isinstance(generator, dict) else generator
    ref = None
    rows, summaries = [], []
    for name in evaluators:
        clf = build_classifier(name) if isinstance(name, str) else name
        if str(generator) == clf.name:
            log.warning("evaluator %s is the generating classifier: its scores are not independent", clf.name)
        if ref is None:
            ref = load_reference(reference_dir, clf.classes, reference_classes)
        refs = reference_embeddings(clf, ref, batch_size, cache_dir, use_cache)
        scored = score(
            clf, images, [r.get("classes", []) for r in results], refs, batch_size, nearest=nearest
        )
        for r, s in zip(results, scored):
            rows.append(
                {
                    "target": r.get("target"),
                    "image": r["image"],
                    "activation": r.get("activation"),
                    "generator_prob": r.get("prob"),
                    **s,
                }
            )
        summaries.append(
            {
                "evaluator": clf.name,
                **summarize(scored),
                "not_ok": excluded,
                "skipped_references": len(refs.skipped),
            }
        )
    write_reports(run_dir, rows, summaries, config, reference=ref)
    return rows, summaries


def write_reports(run_dir, rows, summaries, config=None, reference=None) -> None:
    run_dir = Path(run_dir)
    buf = io.StringIO(newline="")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(rows)
    write_bytes_atomic(run_dir / "evaluation.csv", buf.getvalue().encode("utf-8"))
    gen = (config or {}).get("classifier", "")
    gen = gen.get("name", gen) if isinstance(gen, dict) else gen
    ref_note = f"{reference.folder} ({len(reference)} images)" if reference is not None else "none"
    md = [
        f"# Evaluation of {run_dir.name}",
        "",
        f"Generated with classifier `{gen}`; scored by independent evaluators. "
        f"Plausibility = rank (1 = nearest) of the target class's real image among the "
        f"reference images {ref_note} by cosine similarity in the evaluator's penultimate embedding.",
        "",
        "## Summary",
        "",
        markdown_table(summaries, SUMMARY_COLUMNS),
        "",
        "## Per image",
        "",
        markdown_table(rows, ROW_COLUMNS),
        "",
    ]
    write_text_atomic(run_dir / "evaluation.md", "\n".join(md))
