"""The audit's page and figure: ``audit.html`` (self-contained, images inlined as base64 PNG)
and ``audit.png`` (one row per class: a real image, then per generator its image and nearest
real images)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import torch
from omegaconf import DictConfig

from .classifiers import Classifier
from .images import EVAL_CROP, grid, load_image, to_pil
from .runs import STATUS_NAN, STATUS_OK


def _real(path, size: int) -> torch.Tensor:
    """A real image as the classifier sees it: the centre crop, ``size`` x ``size``."""
    return load_image(path, size, crop_fraction=EVAL_CROP)


def _b64(img: torch.Tensor, size: int) -> str:
    buf = io.BytesIO()
    to_pil(img).resize((size, size)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
section{border-top:2px solid #ccc;margin-top:2em;padding-top:.5em}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;text-align:center;font-size:12px;max-width:%(size)dpx}
figure img{display:block;width:%(size)dpx;height:%(size)dpx;object-fit:cover}
figure.same img{outline:3px solid #2a2}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #eee}
.note{background:#fff4d6;padding:.5em 1em}.dead{color:#b00}
"""


def _figure(src: str, caption: str, cls: str = "") -> str:
    cap = html.escape(caption)
    return f'<figure class="{cls}"><img src="{src}" alt=""><figcaption>{cap}</figcaption></figure>'


def render_html(cfg: DictConfig, clf: Classifier, report: list[dict], note: str | None, size: int) -> str:
    gen = cfg.generator
    steps = {g: s["steps"] for r in report[:1] for g, s in r["generated"].items()}
    ref_dir = cfg.reference_dir or "the shared folder"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>genviz audit</title>",
        f"<style>{CSS % {'size': size}}</style></head><body>",
        f"<h1>Class audit: {html.escape(', '.join(r['name'] for r in report))}</h1>",
        f"<p>Classifier <b>{html.escape(clf.name)}</b>; method {html.escape(str(cfg.method.name))}, "
        f"untrained generator {html.escape(str(gen.param.get('mode', '')))}; steps {steps}; "
        f"seed {cfg.seed}. Nearest real images: cosine similarity of the classifier's penultimate "
        f"embedding among the reference images in {html.escape(str(ref_dir))}; "
        f"green outline = same class as the target.</p>",
    ]
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for r in report:
        c = r["class"]
        parts.append(f'<section class="audit-class" id="class-{c}"><h2>{c} {html.escape(r["name"])}</h2>')
        parts.append("<h3>Real examples</h3><div class='row'>")
        if r["real"]:
            parts += [_figure(_b64(_real(p, size), size), Path(p).name) for p in r["real"]]
        else:
            parts.append("<p>(no real example of this class in the data folder)</p>")
        parts.append("</div>")
        for g, s in r["generated"].items():
            dead = ""
            if s["status"] == STATUS_NAN:
                dead = " <span class='dead'>(non-finite activation, the optimization diverged: not a result)</span>"
            elif s["status"] != STATUS_OK:
                dead = " <span class='dead'>(does not activate its target: not a result)</span>"
            parts.append(f"<h3>{g} generator{dead}</h3><div class='row'>")
            parts.append(
                _figure(
                    _b64(s["tensor"], size),
                    f"activation {s['activation']:.3g}, p={s['prob']:.3f}, rank {s['rank']}, "
                    f"{s['steps']} steps",
                )
            )
            rows = "".join(
                f"<tr><td>{o['class']}</td><td>{html.escape(o['name'])}</td><td>{o['prob']:.3f}</td></tr>"
                for o in s["others"]
            )
            parts.append(
                "<div><b>Other classes it activates most</b><table><tr><th>#</th><th>class</th>"
                f"<th>p</th></tr>{rows}</table></div>"
            )
            parts.append("</div><p><b>Nearest real images</b></p><div class='row'>")
            for nb in s["nearest"]:
                parts.append(
                    _figure(
                        _b64(_real(nb["file"], size), size),
                        f"{nb['name']} ({nb['similarity']:.2f})",
                        "same" if nb["class"] == c else "",
                    )
                )
            parts.append("</div>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_figure(report: list[dict], gens: list[str], size: int, nearest: int):
    """One row per class: real | per generator: image, its nearest real images."""
    cells, labels = [], []
    blank = torch.ones(3, size, size)
    for r in report:
        cells.append(_real(r["real"][0], size) if r["real"] else blank)
        labels.append(f"real {r['name']}")
        for g in gens:
            s = r["generated"][g]
            cells.append(torch.nn.functional.interpolate(s["tensor"][None], size=(size, size))[0])
            flag = {STATUS_OK: "", STATUS_NAN: " nan"}.get(s["status"], " dead")
            labels.append(f"{g} p={s['prob']:.2f}" + flag)
            for nb in s["nearest"][:nearest]:
                cells.append(_real(nb["file"], size))
                labels.append(f"~ {nb['name']} {nb['similarity']:.2f}")
    return grid(cells, labels, ncol=1 + len(gens) * (1 + nearest), cell=size)
