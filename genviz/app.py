"""The visualize application: config -> classifier, targets, method -> images and results.json.

``generate(cfg)`` is the Python API (returns one dict per target, with the
image tensor); ``save(results, out_dir, cfg)`` writes the PNGs, the grid and
``results.json``.  ``visualize.py`` is a thin Hydra wrapper around both.
"""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .classifiers import Classifier
from .engine import render
from .images import grid, save_png
from .methods import build_setup
from .objectives import BatchObjective, Objective
from .targets import parse_targets

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_classifier(cfg: DictConfig, device) -> Classifier:
    try:
        return instantiate(cfg.classifier).to(device)
    except InstantiationException as e:  # surface the builder's own message (offline weights...)
        raise (e.__cause__ or e) from None


def target_list(target) -> list[str]:
    if isinstance(target, str | int):
        return [str(target)]
    if isinstance(target, ListConfig | list | tuple):
        return [str(t) for t in target]
    raise ValueError(f"target must be a string or a list of strings, got {target!r}")


@torch.no_grad()
def measure(clf: Classifier, objectives: list[Objective], images: torch.Tensor, topk: int = 5) -> list[dict]:
    """Score final images: target activation (ReLU outputs), and for classes their
    softmax probability and rank under the classifier, plus the top-k classes."""
    bo = BatchObjective(objectives, lam=0.0, revive=False)
    with clf.recording(bo.layers) as store:
        logits = clf.run(clf.fit_input(images), store)
        _, act = bo.score(store)
    probs = logits.softmax(-1)
    top = probs.topk(min(topk, probs.shape[1]), dim=1)
    out = []
    for i, obj in enumerate(objectives):
        cls = obj.classes
        rank = [int((logits[i] > logits[i, c]).sum()) + 1 for c in cls]
        out.append(
            {
                "activation": float(act[i]),
                "classes": cls,
                "class_names": [clf.classes.name(c) for c in cls],
                "prob": float(probs[i, cls].sum()) if cls else None,
                "probs": [float(probs[i, c]) for c in cls],
                "rank": max(rank) if rank else None,
                "ranks": rank,
                "top5": [
                    [int(j), clf.classes.name(int(j)), round(float(p), 4)]
                    for p, j in zip(top.values[i], top.indices[i])
                ],
            }
        )
    return out


def generate(cfg: DictConfig, classifier: Classifier | None = None) -> list[dict]:
    """Run the configured method for every target (in batches of ``cfg.batch_size``)."""
    device = resolve_device(cfg.get("device", "auto"))
    seed_everything(int(cfg.seed))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    clf = classifier if classifier is not None else build_classifier(cfg, device)
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
        for i in range(len(chunk)):
            status = "dead" if res.dead[i] else "ok"
            results.append(
                {
                    "target": texts[start + i],
                    **scores[i],
                    "optimized_activation": float(res.activation[i]),
                    "dead_start": bool(res.dead_start[i]),
                    "status": status,
                    "steps": res.steps[i],
                    "seconds": res.seconds / len(chunk),
                    "seed": int(cfg.seed),
                    "method": cfg.method.name,
                    "tensor": res.images[i].cpu(),
                    "frames": [f[i] for f in res.frames],
                    "history": res.history[:, i].tolist(),
                }
            )
    return results


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:60]


def save(results: list[dict], out_dir: str | Path, cfg: DictConfig | None = None) -> Path:
    """One PNG per target under images/, grid.png, frames/ (if any) and results.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, r in enumerate(results):
        name = f"{k:03d}_{_slug(r['target'])}"
        r["image"] = str(save_png(r["tensor"], out / "images" / f"{name}.png").relative_to(out))
        if r.get("frames"):
            for j, f in enumerate(r["frames"]):
                save_png(f, out / "frames" / name / f"{j:04d}.png")
        rows.append({k2: v for k2, v in r.items() if k2 not in ("tensor", "frames")})
    labels = [f"{r['target']} {r['activation']:.3g}" for r in results]
    grid([r["tensor"] for r in results], labels).save(out / "grid.png")
    payload = {"results": rows}
    if cfg is not None:
        payload["config"] = OmegaConf.to_container(cfg, resolve=True)
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    return out
