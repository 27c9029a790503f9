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

Modules: ``items`` (the targets and shards), ``render`` (resume, rendering, entries and
``results.json``) and ``sheets`` (contact sheets, the page).  Its Hydra callback
(``genviz.rundir.CheckOutDir``) is shared with audit.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, ListConfig

from ..classifiers import Classifier, build_classifier
from ..methods import with_steps
from ..options import ConfigError, check_writable_dir, int_value, resolve_device
from ..runs import STATUS_NAN
from .items import (
    Item,
    atlas_items,
    class_index,
    class_indices,
    class_item,
    layer_channels,
    parse_range,
    shard_items,
)
from .render import is_done, png_ok, read_entries, render_items, write_results
from .sheets import write_page, write_sheets

__all__ = [
    "SHEETS",
    "Item",
    "atlas_items",
    "check_atlas_config",
    "check_writable_dir",
    "class_index",
    "class_indices",
    "class_item",
    "is_done",
    "layer_channels",
    "parse_range",
    "png_ok",
    "read_entries",
    "render_items",
    "run_atlas",
    "shard_items",
    "write_results",
    "write_sheets",
]

log = logging.getLogger(__name__)


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
    counts["page"] = write_page(cfg, entries, len(items), out, counts["sheets"])
    return counts
