"""Audit classes the way the paper's §5.1 does: what does the classifier take each class to be?

For every class: the images of the untrained generator and (given a DAE checkpoint) of
the pretrained generator, beside real examples of the class; for each generated image
the other classes it activates most and its nearest real images by the classifier's
penultimate embedding. A crib image that the classifier also reads as "cradle", and
whose nearest real images are cradles, shows that the two classes share what the
classifier has learned (the paper's crib/cradle, miniskirt, muzzle, harmonica cases).

Output in ``out_dir``: ``audit.html`` (self-contained, images inlined as base64 PNG),
``audit.png`` (one row per class) and ``audit.json`` (the numbers), each written atomically.

Everything that can be checked is checked before the reference set is embedded (minutes on a
CPU): the classes, the numbers, the checkpoint (it is loaded), the folders and a writable
``out_dir``. A generated image whose activation is not finite has status ``nan``, never ``ok``.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .atlas.items import class_index
from .atomic import save_png_atomic, write_text_atomic
from .classifiers import Classifier, build_classifier
from .images import EVAL_CROP, grid, load_image, to_pil
from .methods import with_steps
from .options import ConfigError, check_writable_dir, int_value, resolve_device
from .references import ReferenceFolderError, load_reference, reference_embeddings, resolve_folder
from .runs import STATUS_NAN, STATUS_OK, result_status
from .scoring import nearest as nearest_refs
from .scoring import score_images

log = logging.getLogger(__name__)


def _real(path, size: int) -> torch.Tensor:
    """A real image as the classifier sees it: the centre crop, ``size`` x ``size``."""
    return load_image(path, size, crop_fraction=EVAL_CROP)


def _b64(img: torch.Tensor, size: int) -> str:
    buf = io.BytesIO()
    to_pil(img).resize((size, size)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def generator_configs(cfg: DictConfig) -> tuple[dict[str, DictConfig], str | None]:
    """{"untrained": cfg, "pretrained": cfg with generator=dae} (the latter only with a
    checkpoint); and a note saying why a generator is missing."""
    out = {"untrained": with_steps(cfg, cfg.get("steps"))}
    ckpt = cfg.get("checkpoint")
    if not ckpt:
        return out, (
            "No DAE checkpoint given (checkpoint=path/to/last.ckpt, from train_dae.py): "
            "the pretrained generator is not shown."
        )
    if not Path(str(ckpt)).is_file():
        what = "is a directory, not a file" if Path(str(ckpt)).is_dir() else "not found"
        raise FileNotFoundError(f"checkpoint={ckpt}: DAE checkpoint {what} (train one with train_dae.py)")
    pre = copy.deepcopy(cfg)
    with open_dict(pre):
        pre.generator = pre.pretrained
        pre.generator.param.checkpoint = str(ckpt)
    out["pretrained"] = with_steps(pre, cfg.get("steps"))
    return out, None


def analyse(
    clf: Classifier, images: torch.Tensor, classes: list[int], refs, top_other: int, nearest: int
) -> list[dict]:
    """For each image: its target prob/rank, the other classes it activates most, and
    its nearest reference images (cosine similarity of penultimate embeddings)."""
    scored = score_images(clf, images, refs)
    probs, order = scored.classes.probs, scored.classes.order
    near = nearest_refs(scored.sims, nearest)
    out = []
    for i, c in enumerate(classes):
        others = [int(j) for j in order[i] if int(j) != c][:top_other]
        out.append(
            {
                "class": c,
                "prob": float(probs[i, c]),
                "rank": int(scored.classes.rank_table[i, c]),
                "others": [
                    {"class": j, "name": clf.classes.name(j), "prob": float(probs[i, j])} for j in others
                ],
                "nearest": [
                    {
                        "file": str(refs.files[int(j)]),
                        "class": int(refs.classes[int(j)]),
                        "name": clf.classes.name(int(refs.classes[int(j)])),
                        "similarity": float(s),
                    }
                    for s, j in zip(near.values[i], near.indices[i])
                ],
            }
        )
    return out


def class_list(spec) -> list:
    """``classes=``: a list of classes, or one class (``classes=crib``, ``classes=3``)."""
    if isinstance(spec, ListConfig | list | tuple):
        if not len(spec):
            raise ConfigError("classes=[] names no class; e.g. classes=[crib,cradle] or classes=[0,1]")
        return list(spec)
    if spec is None or str(spec).strip() == "":
        raise ConfigError("classes is empty; e.g. classes=[crib,cradle] or classes=[0,1]")
    return [spec]


def _folder(key: str, value) -> None:
    try:
        resolve_folder(value)
    except ReferenceFolderError as e:
        if value is None or str(value) in ("", "None", "null"):
            raise  # the default shared folder: its own message says how to point to one
        raise ReferenceFolderError(f"{key}={value}: no such folder ({str(e).splitlines()[0]})") from None


def check_audit_config(cfg: DictConfig) -> tuple[dict[str, DictConfig], str | None]:
    """Everything that can be checked before any heavy work (and before the classifier loads):
    the class list, the numbers, the reference and data folders, the checkpoint (loaded, so a
    garbage file fails here, not after the embedding) and a writable ``out_dir``. Returns
    :func:`generator_configs`' configs; one error naming the key otherwise."""
    class_list(cfg.classes)
    for key, minimum in (("real_examples", 0), ("top_other", 0), ("nearest", 0), ("thumb", 1)):
        int_value(key, cfg.get(key), minimum)
    int_value("steps", cfg.get("steps"), 1, none_ok=True)
    _folder("reference_dir", cfg.get("reference_dir"))
    if cfg.get("data_dir"):
        _folder("data_dir", cfg.data_dir)
    gens, note = generator_configs(cfg)  # a missing checkpoint: FileNotFoundError naming it
    if "pretrained" in gens:
        from .generator import decoder_from_checkpoint

        try:
            decoder_from_checkpoint(str(cfg.checkpoint))
        except (ValueError, OSError) as e:
            msg = str(e).splitlines()[0]
            msg = msg.removeprefix(f"{cfg.checkpoint}: ").removeprefix(f"{cfg.checkpoint} ")
            raise ConfigError(f"checkpoint={cfg.checkpoint}: {msg}") from None
    check_writable_dir(cfg.out_dir, "out_dir")
    return gens, note


def run_audit(cfg: DictConfig, classifier: Classifier | None = None, generate_fn=None) -> dict:
    if generate_fn is None:
        from .app import generate as generate_fn
    gens, note = check_audit_config(cfg)
    out = Path(cfg.out_dir)
    clf = (
        classifier
        if classifier is not None
        else build_classifier(cfg.classifier, resolve_device(cfg.get("device", "auto")))
    )
    spec = cfg.classes
    classes = [class_index(c, clf.classes, "classes", spec) for c in class_list(spec)]
    ref_classes = OmegaConf.to_object(cfg.reference_classes) if cfg.get("reference_classes") else None
    ref = load_reference(cfg.reference_dir, clf.classes, ref_classes)
    data = load_reference(cfg.data_dir or cfg.reference_dir, clf.classes, classes)
    refs = reference_embeddings(clf, ref, cache_dir=cfg.get("cache_dir"))
    size = int(cfg.thumb)

    per_gen: dict[str, list[dict]] = {}
    for name, gcfg in gens.items():
        with open_dict(gcfg):
            gcfg.target = [f"class:{c}" for c in classes]
        results = generate_fn(gcfg, classifier=clf)
        images = torch.stack([r["tensor"] for r in results])
        scores = analyse(clf, images, classes, refs, int(cfg.top_other), int(cfg.nearest))
        for r, s in zip(results, scores):
            s.update(
                tensor=r["tensor"],
                activation=r["activation"],
                status=r["status"],
                steps=r["steps"],
                seconds=r["seconds"],
            )
            if result_status({**r, "prob": s["prob"]}) == STATUS_NAN:
                s["status"] = STATUS_NAN  # a non-finite activation is never ok
        per_gen[name] = scores

    report = []
    for k, c in enumerate(classes):
        real = data.of_class(c)[: int(cfg.real_examples)]
        report.append(
            {
                "class": c,
                "name": clf.classes.name(c),
                "real": [str(p) for p in real],
                "generated": {g: per_gen[g][k] for g in per_gen},
            }
        )

    html_path = out / "audit.html"
    write_text_atomic(html_path, render_html(cfg, clf, report, note, size))
    fig_path = out / "audit.png"
    save_png_atomic(render_figure(report, list(per_gen), size, min(3, int(cfg.nearest))), fig_path)
    slim = [
        {
            **r,
            "generated": {
                g: {k: v for k, v in s.items() if k != "tensor"} for g, s in r["generated"].items()
            },
        }
        for r in report
    ]
    json_path = out / "audit.json"
    write_text_atomic(json_path, json.dumps({"note": note, "classes": slim}, indent=1))
    log.info("audit: %s, %s, %s", html_path, fig_path, json_path)
    return {"html": html_path, "figure": fig_path, "json": json_path, "report": report, "note": note}


# ---------------------------------------------------------------------------------------------
# rendering

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
                dead = " <span class='dead'>(never became active: not a result)</span>"
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
