"""The generator prior (Despraz et al. 2017): a generator's code, and in the untrained mode its
first layer, are optimized; ``generator=untrained|dae|dae_fast|...`` says everything."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .. import transforms as T
from ..classifiers import Classifier
from ..params import generator_prior
from .registry import Setup, register_method, render_options, transform_generator


@register_method("generator_prior")
def generator_prior_method(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    g = cfg.generator
    kw = OmegaConf.to_container(g.param, resolve=True)
    param = generator_prior(n, seed=cfg.seed, device=device, **kw)
    transforms = T.from_config(g.get("transforms"), transform_generator(cfg))
    return Setup(param, instantiate(g.optimizer), {**render_options(g), "transforms": transforms})
