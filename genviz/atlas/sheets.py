"""The atlas's sheets: labelled contact sheets from the images on disk (placeholders for the
missing ones) and the atlas's page."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from ..atomic import save_png_atomic
from ..images import grid, load_image
from ..report import write_run_page
from ..runs import STATUS_OK, TargetResult, read_entry, result_status, slug
from .items import Item


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


def write_page(
    cfg: DictConfig, entries: list[TargetResult], total: int, out: Path, sheets: list[Path]
) -> Path:
    """The atlas's page (``index.html``): its entries and its sheets."""
    return write_run_page(
        [e.to_dict() for e in entries],
        out,
        title=f"genviz atlas: {cfg.sheet}, {len(entries)} of {total} done",
        extra_images=[(p.stem, p.relative_to(out).as_posix()) for p in sheets],
    )
