"""The atlas: many targets rendered in batches, resumable, shardable, laid out on sheets.

Three kinds of sheet (``sheet=``):

- ``classes``: one image per class (``classes=all`` or a range ``0:100`` or a list), a
  labelled contact sheet per ``per_sheet`` (100) classes;
- ``layer``: channels of one layer (paper Fig. 8), ``layer=blocks4 channels=0:64``;
- ``compound``: pairs of classes (paper Fig. 9), each row ``a | a+b | b``.

Every target has a key; ``images/<key>.png`` and ``entries/<key>.json`` are written
(atomically) when it is done, and a target with both files, the PNG decoding and the entry
reading, is skipped on the next run (resume after a crash; a 0-byte or truncated file is
rendered again). ``shard``/``num_shards`` split the targets into contiguous chunks,
one per job (``-m shard=0,1,2,3 num_shards=4``, on SLURM with the submitit launcher).
After rendering, ``results.json`` (the visualize format, so ``evaluate.py`` works on an
atlas) and the sheets are rebuilt from whatever is on disk. A target whose activation is not
finite has status ``nan`` there (never ``ok``).

The config is checked before any work (class ranges, numbers, a writable ``out_dir``): a bad
value is one error naming its key.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from PIL import Image

from .atomic import save_png_atomic, unwritable_reason
from .classes import ClassLookupError, ClassNames
from .classifiers import Classifier, build_classifier
from .images import grid, load_image, to_pil
from .methods import with_steps
from .options import ConfigError, check_writable_dir, int_value, resolve_device
from .references import model_device
from .report import write_run_page
from .runs import (
    STATUS_NAN,
    STATUS_OK,
    TargetResult,
    read_entry,
    result_status,
    slug,
    write_entry,
)
from .runs import write_results as write_results_file

log = logging.getLogger(__name__)


@dataclass
class Item:
    key: str  # file stem: images/<key>.png, entries/<key>.json
    target: str  # the target string given to the engine
    label: str  # caption on the sheets


# ---------------------------------------------------------------------------------------------
# output directory


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra < 1.1
    _HydraCallback = object


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


class CheckOutDir(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` in conf/atlas.yaml, conf/audit.yaml): before Hydra
    creates the run directory (inside ``out_dir``), check that it can; else ``error: ...`` and
    exit code 2 rather than Hydra's traceback."""

    def _check(self, config, dir_key: str) -> None:
        try:
            run_dir, out_dir = self._resolve(config, dir_key)
        except Exception:  # whatever fails here fails again where Hydra reads it, with its message
            return
        if run_dir is None:
            return
        reason = unwritable_reason(run_dir)
        if reason is None:
            return
        key, value = dir_key, run_dir
        if out_dir is not None and _inside(str(run_dir), str(out_dir)):
            key, value = "out_dir", out_dir
        print(
            f"error: {key}={value}: cannot write there ({reason}); choose a writable directory",
            file=sys.stderr,
        )
        raise SystemExit(2)

    @staticmethod
    def _resolve(config, dir_key: str):
        """(run or sweep dir, out_dir), resolved as Hydra will: ``${hydra:...}`` needs the
        HydraConfig singleton, set here for the lookup and put back as it was."""
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.instance()
        prev_cfg, prev_ro = hc.cfg, config.hydra._get_node_flag("readonly")
        try:
            hc.set_config(config)
            return OmegaConf.select(config, dir_key), OmegaConf.select(config, "out_dir", default=None)
        finally:
            hc.cfg = prev_cfg
            OmegaConf.set_readonly(config.hydra, prev_ro)

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")


# ---------------------------------------------------------------------------------------------
# what to render


def parse_range(spec, n: int, resolve=None) -> list[int]:
    """``all``/None -> 0..n-1; ``"0:100"`` -> 0..99; ``"7"`` or 7 -> [7]; a list of
    indices or names (``resolve`` turns a name into an index)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("all", "")):
        return list(range(n))
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, ListConfig | list | tuple):
        return [int(s) if isinstance(s, int) else (resolve(s) if resolve else int(s)) for s in spec]
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(spec))
    if m:
        a = int(m.group(1)) if m.group(1) else 0
        b = int(m.group(2)) if m.group(2) else n
        if not 0 <= a < b or b > n:
            raise ValueError(f"range {spec!r} is empty or out of range: there are {n} (0:{n})")
        return list(range(a, b))
    return [resolve(str(spec)) if resolve else int(spec)]


def _show(spec) -> str:
    """A config value as the user typed it: ``10``, ``5:20``, ``[3,10]``."""
    if isinstance(spec, ListConfig | list | tuple):
        return "[" + ",".join(_show(s) for s in spec) + "]"
    return str(spec)


def class_index(value, names: ClassNames, key: str, spec=None) -> int:
    """One class (index, WordNet id or name) -> its index; an index out of range or an unknown
    name is one error naming ``key`` and the valid range."""
    shown = _show(value if spec is None else spec)
    n = len(names)
    if (
        isinstance(value, int | str)
        and not isinstance(value, bool)
        and re.fullmatch(r"\s*-?\d+\s*", str(value))
    ):
        i = int(value)
        if not 0 <= i < n:
            named = "a WordNet id or a class name" if names.wnids else "or a class name"
            raise ConfigError(
                f"{key}={shown}: class index {i} is out of range: this classifier has {n} classes "
                f"(valid: 0..{n - 1}, {named})"
            )
        return i
    try:
        return names.resolve(str(value))
    except ClassLookupError as e:
        raise ClassLookupError(f"{key}={shown}: {e}") from None


def class_indices(spec, names: ClassNames, key: str = "classes") -> list[int]:
    """The classes of ``classes=``: ``all`` (or empty/null), a range ``a:b``, one class (index,
    WordNet id or name) or a non-empty list of them; each checked against the classifier's
    ``len(names)`` classes, an error naming ``key`` and the valid range otherwise."""
    n = len(names)
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("all", "")):
        return list(range(n))
    if isinstance(spec, ListConfig | list | tuple):
        if not len(spec):
            raise ConfigError(
                f"{key}=[] names no class; use {key}=all, a range such as {key}=0:{n} or a list "
                f"such as {key}=[0,1] (this classifier has {n} classes: 0..{n - 1})"
            )
        return [class_index(s, names, key, spec) for s in spec]
    m = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", str(spec))
    if m:
        a = int(m.group(1)) if m.group(1) else 0
        b = int(m.group(2)) if m.group(2) else n
        if not 0 <= a < b <= n:
            raise ConfigError(
                f"{key}={_show(spec)}: the range is empty or out of range: this classifier has {n} "
                f"classes (valid: a range within 0:{n})"
            )
        return list(range(a, b))
    return [class_index(spec, names, key)]


def class_item(clf: Classifier, c: int) -> Item:
    return Item(f"class_{c:04d}", f"class:{c}", f"{c} {clf.classes.name(c)}")


def layer_channels(clf: Classifier, layer: str) -> int:
    """Number of channels of a layer (one probe forward)."""
    x = torch.zeros(1, 3, clf.input_size, clf.input_size, device=model_device(clf))
    with torch.no_grad(), clf.recording([layer]) as store:
        clf.run(x, store)
    return int(store[layer].post.shape[1])


def atlas_items(cfg: DictConfig, clf: Classifier) -> list[Item]:
    """Every target of the atlas, in order (before sharding)."""
    if cfg.sheet == "classes":
        return [class_item(clf, c) for c in class_indices(cfg.classes, clf.classes, "classes")]
    if cfg.sheet == "layer":
        n = layer_channels(clf, cfg.layer)
        out_of_range = ValueError(
            f"layer {cfg.layer} has {n} channels; channels={_show(cfg.channels)} is out of range "
            f"(valid: a range within 0:{n})"
        )
        try:
            chans = parse_range(cfg.channels, n)
        except ValueError:
            raise out_of_range from None
        if not chans:
            raise ConfigError(
                f"channels={_show(cfg.channels)} names no channel (layer {cfg.layer} has {n}: 0:{n})"
            )
        if max(chans) >= n or min(chans) < 0:
            raise out_of_range
        return [
            Item(f"channel_{slug(cfg.layer)}_{c:04d}", f"channel:{cfg.layer}:{c}", f"{cfg.layer}:{c}")
            for c in chans
        ]
    if cfg.sheet == "compound":
        items: dict[str, Item] = {}
        if not cfg.pairs:
            raise ConfigError("pairs names no pair of classes; e.g. pairs=[[ostrich,bullfrog]]")
        for pair in cfg.pairs:
            if not isinstance(pair, ListConfig | list | tuple) or len(pair) != 2:
                raise ConfigError(f"pairs: {_show(pair)} is not a pair of classes; e.g. pairs=[[1,2],[3,4]]")
            a, b = (class_index(p, clf.classes, "pairs", pair) for p in pair)
            items.setdefault(f"class_{a:04d}", class_item(clf, a))
            key = f"pair_{a:04d}_{b:04d}"
            items[key] = Item(key, f"class:{a}+class:{b}", f"{clf.classes.name(a)} + {clf.classes.name(b)}")
            items.setdefault(f"class_{b:04d}", class_item(clf, b))
        return list(items.values())
    raise ValueError(f"unknown sheet {cfg.sheet!r}: classes | layer | compound")


def shard_items(items: list, shard: int, num_shards: int) -> list:
    """The shard-th of num_shards contiguous chunks (contiguous so a contact sheet is
    mostly the work of one job)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard={shard} must be in 0..num_shards-1={num_shards - 1}")
    n = len(items)
    return items[n * shard // num_shards : n * (shard + 1) // num_shards]


def png_ok(path: Path) -> bool:
    """True if ``path`` is a PNG that decodes (not missing, empty, truncated or garbage)."""
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
    except Exception:  # OSError, SyntaxError (PIL's broken chunks), ValueError...
        return False
    return True


def is_done(out: Path, item: Item) -> bool:
    """Its entry reads and its PNG decodes (a 0-byte or truncated file is not done)."""
    return read_entry(out / "entries" / f"{item.key}.json") is not None and png_ok(
        out / "images" / f"{item.key}.png"
    )


# ---------------------------------------------------------------------------------------------
# rendering


def render_items(cfg: DictConfig, clf: Classifier, items: list[Item], out: Path, generate_fn=None) -> int:
    """Render ``items`` in batches of ``cfg.batch_size``; each finished target is written at
    once (PNG, then its json entry). Returns how many were rendered."""
    if generate_fn is None:
        from .app import generate as generate_fn
    bs = max(1, int(cfg.batch_size))
    done = 0
    for start in range(0, len(items), bs):
        chunk = items[start : start + bs]
        c = copy.deepcopy(cfg)
        with open_dict(c):
            c.target = [it.target for it in chunk]
        results = generate_fn(c, classifier=clf)
        for it, r in zip(chunk, results):
            img = out / "images" / f"{it.key}.png"
            save_png_atomic(to_pil(r["tensor"]), img)
            entry = TargetResult.from_dict(r).without("history")
            entry = entry.replace(key=it.key, label=it.label, image=str(img.relative_to(out)))
            if result_status(entry) == STATUS_NAN:
                entry = entry.replace(status=STATUS_NAN)  # a non-finite activation is never ok
            write_entry(out / "entries" / f"{it.key}.json", entry)
        done += len(chunk)
        log.info("atlas: %d/%d rendered in this job", done, len(items))
    return done


# ---------------------------------------------------------------------------------------------
# sheets


def _cell(out: Path, item: Item, size: int) -> torch.Tensor:
    path = out / "images" / f"{item.key}.png"
    if path.exists():
        try:
            return load_image(path, size)
        except OSError:
            pass
    return torch.full((3, size, size), 0.85)  # placeholder: not rendered (yet)


def _labels(out: Path, items: list[Item]) -> list[str]:
    labels = []
    for it in items:
        e = read_entry(out / "entries" / f"{it.key}.json")
        if e is None:
            labels.append(f"{it.label} (missing)")
            continue
        status = result_status(e)
        flag = "" if status == STATUS_OK else f" [{status}]"
        labels.append(f"{it.label}{flag}")
    return labels


def write_sheets(cfg: DictConfig, items: list[Item], out: Path) -> list[Path]:
    """Contact sheets from the images on disk (missing ones as light grey placeholders)."""
    sheets = out / "sheets"
    sheets.mkdir(parents=True, exist_ok=True)
    size = int(cfg.cell)
    written = []
    if cfg.sheet == "classes":
        per = int(cfg.per_sheet)
        for s in range(0, len(items), per):
            block = items[s : s + per]
            first, last = block[0].key.split("_")[-1], block[-1].key.split("_")[-1]
            path = sheets / f"classes_{first}-{last}.png"
            sheet = grid([_cell(out, it, size) for it in block], _labels(out, block), ncol=10, cell=size)
            save_png_atomic(sheet, path)
            written.append(path)
    elif cfg.sheet == "layer":
        path = sheets / f"layer_{slug(cfg.layer)}_{items[0].key[-4:]}-{items[-1].key[-4:]}.png"
        save_png_atomic(
            grid([_cell(out, it, size) for it in items], _labels(out, items), ncol=8, cell=size), path
        )
        written.append(path)
    else:  # compound: rows a | a+b | b
        by_key = {it.key: it for it in items}
        rows = []
        for it in items:
            if it.key.startswith("pair_"):
                _, a, b = it.key.split("_")
                rows += [by_key[f"class_{a}"], it, by_key[f"class_{b}"]]
        path = sheets / "compound.png"
        save_png_atomic(
            grid([_cell(out, it, size) for it in rows], _labels(out, rows), ncol=3, cell=size), path
        )
        written.append(path)
    return written


def read_entries(items: list[Item], out: Path) -> list[TargetResult]:
    """The readable entries of ``items``, in order; a non-finite activation gets status ``nan``
    (an entry written before that status existed may say ``ok``)."""
    entries = []
    for it in items:
        e = read_entry(out / "entries" / f"{it.key}.json")
        if e is None:
            continue
        if result_status(e) == STATUS_NAN:
            e = e.replace(status=STATUS_NAN)
        entries.append(e)
    return entries


def write_results(cfg: DictConfig, items: list[Item], out: Path) -> Path:
    """results.json in the visualize format, from the entries on disk (evaluate.py reads it)."""
    entries = read_entries(items, out)
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that needs the Hydra runtime (tests compose without it)
        config = OmegaConf.to_container(cfg, resolve=False)
    return write_results_file(out / "results.json", entries, config, config_first=True)


# ---------------------------------------------------------------------------------------------
# entry point


SHEETS = ("classes", "layer", "compound")


def check_atlas_config(cfg: DictConfig) -> None:
    """The values that can be checked without the classifier, before any work: one error
    naming the key."""
    if cfg.sheet not in SHEETS:
        raise ConfigError(f"sheet={cfg.sheet}: unknown sheet; use one of {' | '.join(SHEETS)}")
    shard = int_value("shard", cfg.shard, 0)
    num_shards = int_value("num_shards", cfg.num_shards, 1)
    if shard >= num_shards:
        raise ConfigError(f"shard={shard} must be in 0..num_shards-1={num_shards - 1}")
    int_value("batch_size", cfg.batch_size, 0)  # 0: one target at a time, as before
    int_value("per_sheet", cfg.per_sheet, 1)
    int_value("cell", cfg.cell, 1)
    int_value("steps", cfg.get("steps"), 1, none_ok=True)
    if cfg.sheet == "classes" and isinstance(cfg.classes, ListConfig) and not len(cfg.classes):
        raise ConfigError(
            "classes=[] names no class; use classes=all, a range such as classes=0:100 or a list"
        )


def run_atlas(cfg: DictConfig, classifier: Classifier | None = None, generate_fn=None) -> dict:
    """Render this shard's unfinished targets, then rebuild results.json and the sheets.

    Returns counts: ``total`` (all targets), ``shard`` (this job's), ``skipped`` (already
    done), ``rendered`` (by this call), ``missing`` (of all targets, not done yet), ``nan``
    (entries whose activation is not finite) plus ``sheets`` (paths)."""
    check_atlas_config(cfg)
    cfg = with_steps(cfg, cfg.get("steps"))
    sheets_only = bool(cfg.get("sheets_only", False))
    subdirs = ([] if sheets_only else ["images", "entries"]) + (["sheets"] if cfg.get("sheets", True) else [])
    out = check_writable_dir(cfg.out_dir, "out_dir", subdirs)
    clf = (
        classifier
        if classifier is not None
        else build_classifier(cfg.classifier, resolve_device(cfg.get("device", "auto")))
    )
    items = atlas_items(cfg, clf)
    mine = shard_items(items, int(cfg.shard), int(cfg.num_shards))
    done = {it.key for it in mine if is_done(out, it)}
    todo = [it for it in mine if it.key not in done]
    counts = {"total": len(items), "shard": len(mine), "skipped": len(mine) - len(todo), "rendered": 0}
    log.info(
        "atlas %s: %d targets, shard %d/%d has %d, %d already done, %d to render -> %s",
        cfg.sheet,
        len(items),
        cfg.shard,
        cfg.num_shards,
        len(mine),
        counts["skipped"],
        len(todo),
        out,
    )
    if todo and not sheets_only:
        counts["rendered"] = render_items(cfg, clf, todo, out, generate_fn)
        done |= {it.key for it in todo}
    write_results(cfg, items, out)
    counts["sheets"] = write_sheets(cfg, items, out) if cfg.get("sheets", True) else []
    counts["missing"] = sum(it.key not in done and not is_done(out, it) for it in items)
    entries = read_entries(items, out)
    counts["nan"] = sum(e.status == STATUS_NAN for e in entries)
    sheets = [(p.stem, p.relative_to(out).as_posix()) for p in counts["sheets"]]
    counts["page"] = write_run_page(
        [e.to_dict() for e in entries],
        out,
        title=f"genviz atlas: {cfg.sheet}, {len(entries)} of {len(items)} done",
        extra_images=sheets,
    )
    return counts
