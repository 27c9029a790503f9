"""Method registry: a method turns the run config into what the engine needs.

``@register_method("name")`` builds a :class:`Setup` (parameterization,
optimizer, render options) for a batch of ``n`` targets; ``method=name`` in the
config selects it.  Pixel-space baselines register themselves the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from . import transforms as T
from .classifiers import Classifier
from .params import Param, generator_prior

METHODS: dict[str, Callable[..., Setup]] = {}


@dataclass
class Setup:
    param: Param
    optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer]
    render: dict = field(default_factory=dict)  # keyword arguments of engine.render
    # optional: turns the targets' BatchObjective into the objective to maximize (anything with
    # ``layers``, ``__len__`` and ``score(store) -> (total [B], target [B])``), e.g. feature inversion
    objective: Callable | None = None


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


def render_options(node: DictConfig) -> dict:
    keys = ("steps", "clamp", "final", "snapshot_every", "median_of", "patience", "min_delta", "check_every")
    return {k: node[k] for k in keys if k in node and node[k] is not None}


def transform_generator(cfg: DictConfig, offset: int = 1) -> torch.Generator:
    """The seeded CPU generator of a run's random transforms (shared by the batch rows)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(int(cfg.seed) + offset)
    return g


@register_method("generator_prior")
def _generator_prior(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Despraz et al. 2017: the generator config (``generator=untrained|dae``) says everything."""
    g = cfg.generator
    kw = OmegaConf.to_container(g.param, resolve=True)
    param = generator_prior(n, seed=cfg.seed, device=device, **kw)
    transforms = T.from_config(g.get("transforms"), transform_generator(cfg))
    return Setup(param, instantiate(g.optimizer), {**render_options(g), "transforms": transforms})


from . import baselines  # noqa: E402,F401
