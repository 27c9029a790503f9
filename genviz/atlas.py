"""The atlas: many targets rendered in batches, resumable, shardable, laid out on sheets.

Three kinds of sheet (``sheet=``):

- ``classes``: one image per class (``classes=all`` or a range ``0:100`` or a list), a
  labelled contact sheet per ``per_sheet`` (100) classes;
- ``layer``: channels of one layer (paper Fig. 8), ``layer=blocks4 channels=0:64``;
- ``compound``: pairs of classes (paper Fig. 9), each row ``a | a+b | b``.

Every target has a key; ``images/<key>.png`` and ``entries/<key>.json`` are written
when it is done, and a target with both files is skipped on the next run (resume
after a crash). ``shard``/``num_shards`` split the targets into contiguous chunks,
one per job (``-m shard=0,1,2,3 num_shards=4``, on SLURM with the submitit launcher).
After rendering, ``results.json`` (the visualize format, so ``evaluate.py`` works on an
atlas) and the sheets are rebuilt from whatever is on disk.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .classifiers import Classifier
from .images import grid, load_image, save_png

log = logging.getLogger(__name__)


@dataclass
class Item:
    key: str  # file stem: images/<key>.png, entries/<key>.json
    target: str  # the target string given to the engine
    label: str  # caption on the sheets


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")


def class_item(clf: Classifier, c: int) -> Item:
    return Item(f"class_{c:04d}", f"class:{c}", f"{c} {clf.classes.name(c)}")


def layer_channels(clf: Classifier, layer: str) -> int:
    """Number of channels of a layer (one probe forward)."""
    with torch.no_grad(), clf.recording([layer]) as store:
        clf.run(torch.zeros(1, 3, clf.input_size, clf.input_size), store)
    return int(store[layer].post.shape[1])


def atlas_items(cfg: DictConfig, clf: Classifier) -> list[Item]:
    """Every target of the atlas, in order (before sharding)."""
    if cfg.sheet == "classes":
        return [class_item(clf, c) for c in parse_range(cfg.classes, len(clf.classes), clf.classes.resolve)]
    if cfg.sheet == "layer":
        n = layer_channels(clf, cfg.layer)
        try:
            chans = parse_range(cfg.channels, n)
        except ValueError:
            raise ValueError(
                f"layer {cfg.layer} has {n} channels; channels={cfg.channels} is out of range"
            ) from None
        if max(chans) >= n:
            raise ValueError(f"layer {cfg.layer} has {n} channels; channels={cfg.channels} is out of range")
        return [
            Item(f"channel_{_slug(cfg.layer)}_{c:04d}", f"channel:{cfg.layer}:{c}", f"{cfg.layer}:{c}")
            for c in chans
        ]
    if cfg.sheet == "compound":
        items: dict[str, Item] = {}
        for pair in cfg.pairs:
            a, b = (clf.classes.resolve(p) for p in pair)
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


def is_done(out: Path, item: Item) -> bool:
    return (out / "images" / f"{item.key}.png").exists() and (out / "entries" / f"{item.key}.json").exists()


def with_steps(cfg: DictConfig, steps) -> DictConfig:
    """Override the number of optimization steps wherever the method keeps it."""
    if steps is None:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for node in ("generator", "method"):
            if node in cfg and cfg[node] is not None and "steps" in cfg[node]:
                cfg[node].steps = int(steps)
    return cfg


# ---------------------------------------------------------------------------------------------
# rendering


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


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
            save_png(r["tensor"], img)
            entry = {k: v for k, v in r.items() if k not in ("tensor", "frames", "history")}
            entry.update(key=it.key, label=it.label, image=str(img.relative_to(out)))
            _write_json(out / "entries" / f"{it.key}.json", entry)
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
        path = out / "entries" / f"{it.key}.json"
        if not path.exists():
            labels.append(f"{it.label} (missing)")
            continue
        e = json.loads(path.read_text())
        flag = "" if e.get("status", "ok") == "ok" else f" [{e['status']}]"
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
            grid([_cell(out, it, size) for it in block], _labels(out, block), ncol=10, cell=size).save(path)
            written.append(path)
    elif cfg.sheet == "layer":
        path = sheets / f"layer_{_slug(cfg.layer)}_{items[0].key[-4:]}-{items[-1].key[-4:]}.png"
        grid([_cell(out, it, size) for it in items], _labels(out, items), ncol=8, cell=size).save(path)
        written.append(path)
    else:  # compound: rows a | a+b | b
        by_key = {it.key: it for it in items}
        rows = []
        for it in items:
            if it.key.startswith("pair_"):
                _, a, b = it.key.split("_")
                rows += [by_key[f"class_{a}"], it, by_key[f"class_{b}"]]
        path = sheets / "compound.png"
        grid([_cell(out, it, size) for it in rows], _labels(out, rows), ncol=3, cell=size).save(path)
        written.append(path)
    return written


def write_results(cfg: DictConfig, items: list[Item], out: Path) -> Path:
    """results.json in the visualize format, from the entries on disk (evaluate.py reads it)."""
    entries = []
    for it in items:
        path = out / "entries" / f"{it.key}.json"
        if path.exists():
            entries.append(json.loads(path.read_text()))
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # an interpolation that needs the Hydra runtime (tests compose without it)
        config = OmegaConf.to_container(cfg, resolve=False)
    path = out / "results.json"
    _write_json(path, {"config": config, "results": entries})
    return path


# ---------------------------------------------------------------------------------------------
# entry point


def run_atlas(cfg: DictConfig, classifier: Classifier | None = None, generate_fn=None) -> dict:
    """Render this shard's unfinished targets, then rebuild results.json and the sheets.

    Returns counts: ``total`` (all targets), ``shard`` (this job's), ``skipped`` (already
    done), ``rendered`` (by this call), plus ``sheets`` (paths)."""
    from hydra.utils import instantiate

    cfg = with_steps(cfg, cfg.get("steps"))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf = classifier if classifier is not None else instantiate(cfg.classifier)
    items = atlas_items(cfg, clf)
    mine = shard_items(items, int(cfg.shard), int(cfg.num_shards))
    todo = [it for it in mine if not is_done(out, it)]
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
    if todo and not cfg.get("sheets_only", False):
        counts["rendered"] = render_items(cfg, clf, todo, out, generate_fn)
    write_results(cfg, items, out)
    counts["sheets"] = write_sheets(cfg, items, out) if cfg.get("sheets", True) else []
    counts["missing"] = sum(not is_done(out, it) for it in items)
    return counts
