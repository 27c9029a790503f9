"""The visualize application: config -> classifier, targets, method -> images and results.json.

``generate(cfg)`` is the Python API (returns one dict per target: a
:class:`~genviz.runs.TargetResult` as a dict, with the image tensor); ``save(results, out_dir,
cfg)`` writes the PNGs, the grid and ``results.json``.  ``visualize.py`` is a thin Hydra
wrapper around both.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from .atomic import save_png_atomic
from .classifiers import Classifier, build_classifier, classifier_class_names
from .engine import render
from .images import grid, save_png
from .maco import transparency_alpha
from .methods import build_setup, options_node
from .objectives import BatchObjective, Objective
from .options import ConfigError, float_value, int_value, resolve_device
from .report import activation_png, frames_gif, write_run_page
from .rundir import LOCK_NAME, OutputError, check_writable, claim_output  # noqa: F401  (its home is rundir)
from .runs import STATUS_NAN, TargetResult, as_record, result_label, result_name, status_of, write_results
from .scoring import ClassScores, no_class_scores, target_scores
from .targets import check_targets, parse_targets, target_label

log = logging.getLogger(__name__)


def _int_option(
    cfg: DictConfig, key: str, minimum: int, none_ok: bool = True, maximum: int | None = None
) -> int | None:
    value = OmegaConf.select(cfg, key)
    if value is None and not none_ok:
        raise ConfigError(f"{key} must be set (an integer of at least {minimum})")
    return int_value(key, value, minimum, none_ok, maximum)


def _float_option(cfg: DictConfig, key: str, minimum: float = 0.0, why: str = "") -> float:
    return float_value(key, OmegaConf.select(cfg, key), minimum, why)


def ignored_options(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """The command-line overrides a pixel-space method would silently ignore: it optimizes
    pixels, so ``generator=...`` and ``generator.*`` mean nothing to it."""
    if options_node(cfg) == "generator":
        return []
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    return [o for o, k in zip(overrides, keys, strict=True) if k == "generator" or k.startswith("generator.")]


def check_method_options(cfg: DictConfig, overrides: list[str]) -> None:
    ignored = ignored_options(cfg, overrides)
    if ignored:
        raise ValueError(
            f"method={cfg.method.name} optimizes pixels and ignores the generator: drop "
            f"{' '.join(ignored)} (this method's own keys are method.*, e.g. method.steps), or use "
            "method=generator_prior"
        )


def validate_config(cfg: DictConfig, targets: bool = True) -> None:
    """Check the run's config values before any work (and before the classifier loads): a value
    that cannot work is one error naming its key. ``targets``: also the target strings, against
    the class names the configured classifier will have (when known without building it)."""
    resolve_device(cfg.get("device", "auto"))
    _int_option(cfg, "seed", -(2**63), none_ok=False, maximum=2**64 - 1)  # torch.manual_seed's range
    _int_option(cfg, "batch_size", 0)  # null or 0: all targets in one batch
    _int_option(cfg, "threads", 0, maximum=4096)  # null or 0: torch's default
    _int_option(cfg, "frames_every", 0)
    _float_option(
        cfg,
        "lam",
        0.0,
        ": a negative lambda rewards the other classes' activations instead of penalizing them",
    )
    node = options_node(cfg)
    if OmegaConf.select(cfg, node) is not None:
        for key, minimum in (
            ("steps", 1),
            ("check_every", 1),
            ("snapshot_every", 1),
            ("median_of", 1),
            ("patience", 0),
            ("init_candidates", 1),
        ):
            if OmegaConf.select(cfg, f"{node}.{key}") is not None:
                _int_option(cfg, f"{node}.{key}", minimum)
        if OmegaConf.select(cfg, f"{node}.min_delta") is not None:
            _float_option(cfg, f"{node}.min_delta", 0.0)
        if "lr" in (OmegaConf.select(cfg, f"{node}.optimizer") or {}):  # null too: the optimizer needs one
            _float_option(cfg, f"{node}.optimizer.lr", 0.0)
    texts = target_list(cfg.target)
    if targets:
        names = classifier_class_names(cfg.classifier) if cfg.get("classifier") is not None else None
        check_targets(texts, names)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def target_list(target) -> list[str]:
    if isinstance(target, str | int):
        return [str(target)]
    if isinstance(target, ListConfig | list | tuple):
        if not len(target):
            raise ConfigError(
                "target=[] names no target; try target=class:mosque or target=[class:1,class:2]"
            )
        return [str(t) for t in target]
    raise ConfigError(f"target must be a string or a list of strings, got {target!r}")


@torch.no_grad()
def measure(clf: Classifier, objectives: list[Objective], images: torch.Tensor, topk: int = 5) -> list[dict]:
    """Score final images: target activation (ReLU outputs), and for classes their
    softmax probability and rank under the classifier, plus the top-k classes
    (:func:`genviz.scoring.target_scores`)."""
    bo = BatchObjective(objectives, lam=0.0, revive=False)
    with clf.recording(bo.layers) as store:
        logits = clf.run(clf.fit_input(images), store)
        _, act = bo.score(store)
    scores = ClassScores(logits)
    out = []
    for i, obj in enumerate(objectives):
        cls = obj.classes
        row = {
            "activation": float(act[i]),
            "classes": cls,
            "class_names": [clf.classes.name(c) for c in cls],
        }
        row.update(target_scores(scores, i, cls, clf.classes, topk))
        out.append(row)
    return out


def generate(cfg: DictConfig, classifier: Classifier | None = None, on_batch=None) -> list[dict]:
    """Run the configured method for every target (in batches of ``cfg.batch_size``);
    ``on_batch(results so far)`` after each batch (:func:`run_and_save` saves them at once)."""
    validate_config(cfg, targets=classifier is None)  # a given classifier checks them itself
    device = resolve_device(cfg.get("device", "auto"))
    seed_everything(int(cfg.seed))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    clf = classifier if classifier is not None else build_classifier(cfg.classifier, device)
    texts = target_list(cfg.target)
    objectives = parse_targets(texts, clf)
    bs = max(1, int(cfg.get("batch_size") or len(objectives)))
    results: list[dict] = []
    for start in range(0, len(objectives), bs):
        chunk = objectives[start : start + bs]
        setup = build_setup(cfg, clf, len(chunk), device)
        bo = BatchObjective(chunk, lam=float(cfg.lam), revive=bool(cfg.revive))
        if setup.objective is not None:
            bo = setup.objective(bo)
        desc = texts[start] if len(chunk) == 1 else f"targets {start + 1}-{start + len(chunk)}/{len(texts)}"
        res = render(
            setup.param,
            bo,
            clf,
            setup.optimizer,
            progress=bool(cfg.progress),
            desc=desc,
            frames_every=int(cfg.get("frames_every") or 0),
            **setup.render,
        )
        scores = measure(clf, chunk, res.images)
        tmap = setup.param.transparency
        for i in range(len(chunk)):
            nonfinite = bool(res.nonfinite and res.nonfinite[i]) or not math.isfinite(scores[i]["activation"])
            minimizing = bool(res.minimizing and res.minimizing[i])
            # the status describes the image delivered: its target's activation, measured
            # untransformed (the engine's flag is about the transformed views it optimized).  A
            # method that replaces the objective (inversion, style, deepdream on a layer) is judged
            # by the engine on its own objective: the command line's target is not its aim.
            if setup.objective is None:
                dead = not minimizing and scores[i]["activation"] <= 0
            else:
                dead = bool(res.dead[i])
            status = status_of(scores[i]["activation"], dead, nonfinite)
            if status == STATUS_NAN:  # a non-finite activation is never dead or ok
                scores[i].update(no_class_scores(len(scores[i]["classes"])))
            record = TargetResult(
                target=texts[start + i],
                label=target_label(texts[start + i], clf.classes),
                **scores[i],
                minimizing=minimizing,
                optimized_activation=float(res.activation[i]),
                dead_start=bool(res.dead_start[i]),
                start=res.starts[i] if res.starts else None,
                status=status,
                steps=res.steps[i],
                seconds=res.seconds / len(chunk),
                seed=int(cfg.seed),
                method=cfg.method.name,
                tensor=res.images[i].cpu(),
                frames=[f[i] for f in res.frames],
                history=res.history[:, i].tolist(),
            )
            results.append(record.to_dict(memory=True))
            if tmap is not None:  # MACO: the accumulated |gradient| w.r.t. the image, [3, H, W]
                results[-1]["transparency_map"] = tmap[i].cpu()
        if on_batch is not None:
            on_batch(results)
    return results


def save(results: list[dict], out_dir: str | Path, cfg: DictConfig | None = None, final: bool = True) -> Path:
    """One PNG per target under images/ (with MACO, also ``<name>_transparency.png``: the image
    with its transparency map as alpha), grid.png, frames/ (if any) and results.json (written
    atomically: a reader sees the previous file or the whole new one).  A result saved before (its
    ``image`` is on disk) is not written again; ``final=False`` (a batch finished): only the new
    images and results.json, the grid and the page at the end."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, r in enumerate(results):
        if r.get("image") and (out / r["image"]).is_file():  # saved with an earlier batch
            rows.append(as_record(r).to_dict())
            continue
        name = result_name(k, r["target"])
        r["image"] = str(save_png(r["tensor"], out / "images" / f"{name}.png").relative_to(out))
        if r.get("transparency_map") is not None:  # the image with its transparency as alpha
            rgba = torch.cat([r["tensor"], transparency_alpha(r["transparency_map"])[None]])
            path = save_png(rgba, out / "images" / f"{name}_transparency.png")
            r["transparency"] = str(path.relative_to(out))
        if r.get("frames"):
            for j, f in enumerate(r["frames"]):
                save_png(f, out / "frames" / name / f"{j:04d}.png")
            r["gif"] = str(
                frames_gif([*r["frames"], r["tensor"]], out / "frames" / f"{name}.gif").relative_to(out)
            )
        rows.append(as_record(r).to_dict())
    if not final:
        write_results(out / "results.json", rows, OmegaConf.to_container(cfg, resolve=True) if cfg else None)
        return out
    labels = [f"{result_label(r)} {r['activation']:.3g}" for r in results]
    save_png_atomic(grid([r["tensor"] for r in results], labels), out / "grid.png")
    extra = [("the whole batch", "grid.png")]
    if activation_png(results, out / "activation.png"):
        extra.insert(0, ("optimized activation per step", "activation.png"))
    config = config_yaml = None
    if cfg is not None:
        config = OmegaConf.to_container(cfg, resolve=True)
        config_yaml = OmegaConf.to_yaml(config)
    write_results(out / "results.json", rows, config)
    write_run_page(
        rows, out, title=f"genviz: {len(rows)} targets", config_yaml=config_yaml, extra_images=extra
    )
    return out


def run_and_save(cfg: DictConfig, out_dir: str | Path) -> tuple[list[dict], Path]:
    """:func:`generate` and :func:`save` as visualize.py runs them: each batch is saved as it
    finishes (its images, and results.json with every finished target), so a fault later in the
    run (a full disk, a crash, Ctrl-C) keeps the finished work; the grid and the page at the end."""
    results = generate(cfg, on_batch=lambda done: save(done, out_dir, cfg, final=False))
    return results, save(results, out_dir, cfg)
