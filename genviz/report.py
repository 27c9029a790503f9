"""What a run leaves for people to look at: ``index.html`` (one self-contained page per run,
images linked relatively), ``activation.png`` (the optimized activation per step, one line per
target) and ``frames/<target>.gif`` (the optimization as an animation).  Pillow only."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_path, save_png_atomic, write_text_atomic
from .runs import NOT_OK, STATUS_OK, finite_number, result_label

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]  # fmt: skip


def curve(r: dict) -> list[float]:
    """A result's activation per step, up to the step it stopped at (null, as results.json
    writes a non-finite value: NaN)."""
    hist = list(r.get("history") or [])
    steps = int(r.get("steps") or len(hist))
    return [float(v) if finite_number(v) else math.nan for v in hist[:steps]]


def esc(value) -> str:
    """Any value as HTML text: every value that reaches a page goes through this (a results.json
    or atlas entry read back may hold markup in any field)."""
    return html.escape(str(value))


def esc_number(value, spec: str) -> str:
    """A number formatted with ``spec`` (``nan`` too); anything else escaped as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(float(value), spec)
    return esc(value)


def _finite(values) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def activation_png(results: Sequence[dict], path: str | Path, size=(720, 400)) -> Path | None:
    """One line per target: its activation per step.  A target that stopped early ends in a
    dot; a dead or non-finite one is drawn dashed and named so in the legend.  ``None`` when
    no result has a history."""
    curves = [curve(r) for r in results]
    if not any(curves):
        return None
    values = _finite(v for c in curves for v in c)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    longest = max(len(c) for c in curves)
    w, h = size
    left, right, top, legend_h = 56, 12, 12, 16 * min(len(results), 10) + 8
    bottom = h - 28 - legend_h
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    d.rectangle([left, top, w - right, bottom], outline="#888")

    def xy(step: int, v: float) -> tuple[float, float]:
        x = left + (w - right - left) * (step / max(longest - 1, 1))
        return x, bottom - (bottom - top) * ((v - lo) / (hi - lo))

    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        _, y = xy(0, v)
        d.text((4, y - 6), f"{v:.3g}", fill="#444", font=font)
    d.text((left + 6, top + 3), "optimized activation per step", fill="#444", font=font)
    d.text((left, bottom + 4), "step 1", fill="#444", font=font)
    d.text((w - right - 60, bottom + 4), f"step {longest}", fill="#444", font=font)
    for k, (r, c) in enumerate(zip(results, curves, strict=True)):
        color = PALETTE[k % len(PALETTE)]
        status = r.get("status", STATUS_OK)
        pts = [xy(s, v) for s, v in enumerate(c) if math.isfinite(v)]
        if len(pts) > 1:
            if status in NOT_OK:  # dashed: every other segment
                for a, b in list(zip(pts, pts[1:]))[::2]:
                    d.line([a, b], fill=color, width=2)
            else:
                d.line(pts, fill=color, width=2)
        if pts and len(c) < longest:
            x, y = pts[-1]
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        if k < 10:
            ly = bottom + 22 + 16 * k
            d.line([(left, ly + 6), (left + 24, ly + 6)], fill=color, width=3)
            note = "" if status == STATUS_OK else f"  [{status}]"
            stop = f"  stopped at step {len(c)}" if c and len(c) < longest else ""
            d.text((left + 32, ly), f"{result_label(r)[:70]}{note}{stop}", fill="black", font=font)
    path = Path(path)
    save_png_atomic(im, path)
    return path


def frames_gif(frames: Sequence, path: str | Path, ms_per_frame: int = 120) -> Path | None:
    """The optimization's snapshots ([3, H, W] tensors in [0, 1]) as a looping GIF."""
    from .images import to_pil

    if not frames:
        return None
    images = [to_pil(f) for f in frames]
    size = images[-1].size  # multi-scale methods grow their image: one canvas, the final size
    images = [im if im.size == size else im.resize(size) for im in images]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0
        )
    return path


def curve_svg(values: Sequence[float], width: int = 220, height: int = 60, color: str = "#1f77b4") -> str:
    """An inline SVG sparkline of one activation curve."""
    vals = [v for v in values if math.isfinite(v)]
    if len(vals) < 2:
        return f'<svg width="{width}" height="{height}"></svg>'
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    n = len(vals)
    pts = " ".join(
        f"{i * (width - 2) / (n - 1) + 1:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}"
        for i, v in enumerate(vals)
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>'
        f"<title>activation {vals[0]:.3g} to {vals[-1]:.3g} over {n} steps</title></svg>"
    )


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
.cards{display:flex;flex-wrap:wrap;gap:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:240px;font-size:13px}
.card img.main{width:224px;height:224px;image-rendering:auto;display:block}
.card.bad{border-color:#c33;background:#fff4f4}
.card.pair{width:464px}.card.pair img.main{display:inline-block;margin-right:8px}
.status{font-weight:600}.status.ok{color:#2a2}.status.bad{color:#c33}
ol{margin:.3em 0;padding-left:1.4em}table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
details{margin-top:1.5em}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
"""


def _card(r: dict, k: int) -> str:
    status = r.get("status", STATUS_OK)
    bad = status != STATUS_OK
    pair = " pair" if r.get("image") and r.get("transparency") else ""
    parts = [f'<div class="card{" bad" if bad else ""}{pair}" id="t{k}">', f"<b>{esc(result_label(r))}</b>"]
    if r.get("image"):
        parts.append(f'<img class="main" src="{esc(r["image"])}" alt="{esc(r.get("target"))}">')
    if pair:  # MACO: beside the image, the image with its transparency map as alpha (the paper's display)
        parts.append(
            f'<img class="main" src="{esc(r["transparency"])}" alt="transparency map" '
            'title="transparency: the accumulated |gradient| of the objective w.r.t. the image">'
        )
    if r.get("gif"):
        parts.append(f'<a href="{esc(r["gif"])}">the optimization (GIF)</a>')
    line = f'<span class="status {"bad" if bad else "ok"}">{esc(status)}</span>'
    if finite_number(r.get("prob")):
        line += f" · p {float(r['prob']):.3f} · rank {esc(r.get('rank'))}"
    act = r.get("activation")
    if act is not None:
        line += f" · activation {esc_number(act, '.3g')}"
    parts.append(f"<div>{line}</div>")
    if r.get("start"):  # a start from a real photo's code: what the image grew from
        parts.append(f'<div class="start">started from {esc(r["start"])}</div>')
    if r.get("top5"):
        items = "".join(f"<li>{esc(t[1])} {esc_number(t[2], '.3f')}</li>" for t in r["top5"] if len(t) == 3)
        parts.append(f"<ol>{items}</ol>")
    c = curve(r)
    if len(c) > 1:
        parts.append(curve_svg(c, color=PALETTE[k % len(PALETTE)]))
    parts.append("</div>")
    return "".join(parts)


def write_run_page(
    results: Sequence[dict],
    out_dir: str | Path,
    title: str = "genviz run",
    config_yaml: str | None = None,
    extra_images: Sequence[tuple[str, str]] = (),
) -> Path:
    """``out_dir/index.html``: each target's image (paths relative to ``out_dir``, as the
    results carry them in ``image`` / ``gif``), status, probability, top-5 and activation
    curve; then ``extra_images`` (caption, relative path) and the config."""
    out = Path(out_dir)
    ok = sum(r.get("status", STATUS_OK) == STATUS_OK for r in results)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(results)} targets, {ok} ok, {len(results) - ok} not ok.</p>",
        '<div class="cards">' + "".join(_card(r, k) for k, r in enumerate(results)) + "</div>",
    ]
    for caption, rel in extra_images:
        body.append(
            f'<h2>{html.escape(caption)}</h2><img src="{html.escape(rel)}" alt="{html.escape(caption)}">'
        )
    if config_yaml:
        body.append(f"<details><summary>config</summary><pre>{html.escape(config_yaml)}</pre></details>")
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    path = out / "index.html"
    write_text_atomic(path, page)
    return path


def write_table_page(
    rows: Sequence[dict],
    columns: Sequence[str],
    out_dir: str | Path,
    title: str,
    image_key: str = "grid",
    link_key: str = "page",
) -> Path:
    """``out_dir/index.html`` with one table row per entry (a sweep's runs): the columns, a
    thumbnail of ``row[image_key]`` and a link to ``row[link_key]`` (both relative paths)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in [*columns, "image"])
    trs = []
    for r in rows:
        cells = "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns)
        img = r.get(image_key)
        link = r.get(link_key)
        thumb = f'<img src="{html.escape(img)}" style="max-height:120px">' if img else ""
        if link:
            thumb = f'<a href="{html.escape(link)}">{thumb or "page"}</a>'
        trs.append(f"<tr>{cells}<td>{thumb}</td></tr>")
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<table><tr>{head}</tr>{''.join(trs)}</table></body></html>"
    )
    path = Path(out_dir) / "index.html"
    write_text_atomic(path, page)
    return path
