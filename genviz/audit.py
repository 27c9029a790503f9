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

import copy
import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .atlas.items import class_index
from .atomic import save_png_atomic, write_text_atomic
from .audit_page import render_figure, render_html
from .classifiers import Classifier, build_classifier
from .methods import with_steps
from .options import ConfigError, check_writable_dir, int_value, resolve_device
from .references import ReferenceFolderError, load_reference, reference_embeddings, resolve_folder
from .runs import STATUS_NAN, result_status
from .scoring import nearest as nearest_refs
from .scoring import score_images

log = logging.getLogger(__name__)


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


MAX_THUMB = 2048  # px: a thumbnail (thumb=60000 ran out of memory once the images were generated)


def check_audit_config(cfg: DictConfig) -> tuple[dict[str, DictConfig], str | None]:
    """Everything that can be checked before any heavy work (and before the classifier loads):
    the class list, the numbers, the reference and data folders, the checkpoint (loaded, so a
    garbage file fails here, not after the embedding) and a writable ``out_dir``. Returns
    :func:`generator_configs`' configs; one error naming the key otherwise."""
    class_list(cfg.classes)
    for key, minimum in (("real_examples", 0), ("top_other", 0), ("nearest", 0)):
        int_value(key, cfg.get(key), minimum)
    int_value("thumb", cfg.get("thumb"), 1, maximum=MAX_THUMB)
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
            if r.get("start"):  # the real photo's class it grew from (a bank start)
                s["start"] = r["start"]
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
