"""The method registry: a method turns the run config into what the engine needs.

``@register_method("name")`` builds a :class:`Setup` (parameterization, optimizer, render
options) for a batch of ``n`` targets; ``method=name`` in the config selects it.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from omegaconf import DictConfig, open_dict

from ..classifiers import Classifier
from ..engine import render
from ..objectives import Scorer
from ..options import int_value
from ..params import Param

METHODS: dict[str, Callable[..., Setup]] = {}

# the config keys that engine.render takes as they are (its other keywords are built by the
# method, e.g. transforms and image ops, or by the application, e.g. progress)
RENDER_KEYS = tuple(
    k
    for k, p in inspect.signature(render).parameters.items()
    if p.default is not inspect.Parameter.empty
    and k not in ("transforms", "image_ops", "frames_every", "progress", "desc")
)


@dataclass
class Setup:
    param: Param
    optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer]
    render: dict = field(default_factory=dict)  # keyword arguments of engine.render
    # optional: turns the targets' BatchObjective into the Scorer to maximize, e.g. feature inversion
    objective: Callable[[Scorer], Scorer] | None = None


def register_method(name: str):
    def deco(fn):
        METHODS[name] = fn
        return fn

    return deco


def build_setup(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    name = cfg.method.name
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name](cfg, clf, n, device)


def options_node(cfg: DictConfig) -> str:
    """Where the run's method keeps its options (steps, optimizer, render keys): ``generator``
    for the generator prior (``generator=dae|untrained|...``), ``method`` for the pixel-space
    methods (``method=fourier|pixel|...``)."""
    method = cfg.get("method")
    if method is None or method.get("name", "generator_prior") == "generator_prior":
        return "generator"
    return "method"


def render_options(node: DictConfig) -> dict:
    """The engine.render keywords a generator or method config sets (steps, final, patience...)."""
    return {k: node[k] for k in RENDER_KEYS if k in node and node[k] is not None}


def with_steps(cfg: DictConfig, steps) -> DictConfig:
    """A copy of ``cfg`` whose method runs ``steps`` optimization steps (None: ``cfg`` itself)."""
    if steps is None:
        return cfg
    steps = int_value("steps", steps, 1)
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for node in ("generator", "method"):  # both: a pixel method's sweep may switch back
            if node in cfg and cfg[node] is not None and "steps" in cfg[node]:
                cfg[node].steps = int(steps)
    return cfg


def transform_generator(cfg: DictConfig, offset: int = 1, device="cpu") -> torch.Generator:
    """The seeded generator of a run's random transforms (shared by the batch rows); on the CPU
    unless the transforms draw on the images' ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(int(cfg.seed) + offset)
    return g
