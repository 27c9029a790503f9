"""Rendering the atlas: which targets are done (resume), rendering the rest in batches, each
written at once (PNG, then its entry), and ``results.json`` from the entries on disk."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

from ..atomic import regular_file, save_png_atomic
from ..classifiers import Classifier
from ..images import to_pil
from ..runs import STATUS_NAN, TargetResult, read_entry, result_status, write_entry
from ..runs import write_results as write_results_file
from .items import Item

log = logging.getLogger("genviz.atlas")


def png_ok(path: Path) -> bool:
    """True if ``path`` is a PNG that decodes (not missing, empty, truncated, garbage or other
    than a regular file: a FIFO would block)."""
    try:
        with Image.open(regular_file(path)) as im:
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


def render_items(cfg: DictConfig, clf: Classifier, items: list[Item], out: Path, generate_fn=None) -> int:
    """Render ``items`` in batches of ``cfg.batch_size``; each finished target is written at
    once (PNG, then its json entry). Returns how many were rendered."""
    if generate_fn is None:
        from ..app import generate as generate_fn
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
