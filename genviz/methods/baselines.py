"""The pixel-space methods, in the same engine as the generator prior.

pixel and pixel_regularized (plain and regularized gradient ascent on the pixels), multiscale
(a small image upscaled in rounds), tv_lp (total variation and Lp priors with jitter, after
Mahendran & Vedaldi), fourier (Lucid's parameterization), maco (a fixed magnitude spectrum, an
optimized phase, after Fel et al.), deepdream, class_dream, inversion and
style.  Each reads its options from ``cfg.method`` (conf/method/<name>.yaml); the targets come
from ``target=`` as for the generator prior.  Methods that start from an image read
``method.image`` (or ``method.content`` / ``method.style``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from .. import regularizers as R
from .. import transforms as T
from ..classifiers import Classifier
from ..fourier import fourier_param
from ..images import load_image
from ..maco import load_magnitude, maco_param
from ..options import ConfigError, float_value, int_value
from ..pixel import pixel_param
from .registry import Setup, register_method, render_options, transform_generator
from .scorers import Inversion, LayerL2, Style, features


# -- helpers ----------------------------------------------------------------------------------
def _size(cfg: DictConfig, clf: Classifier) -> int:
    return int(cfg.method.get("size") or clf.input_size)


def _image(cfg: DictConfig, key: str, size: int) -> torch.Tensor:
    path = cfg.method.get(key)
    if not path:
        raise ValueError(f"method {cfg.method.name!r} needs an input image: set method.{key}=PATH")
    if not Path(str(path)).is_file():
        raise FileNotFoundError(f"method.{key}: no image file at {path!r}")
    return load_image(path, size)


def _transforms(cfg: DictConfig, device) -> list:
    return T.from_config(cfg.method.get("transforms"), transform_generator(cfg))


def _penalty(m: DictConfig):
    tv, lp = float(m.get("tv_weight", 0) or 0), float(m.get("lp_weight", 0) or 0)
    p, beta = float(m.get("lp_p", 6)), float(m.get("tv_beta", 2))
    if not tv and not lp:
        return None
    return lambda x: tv * R.total_variation(x, beta) + lp * R.lp_norm(x, p)


def _render(m: DictConfig, **extra) -> dict:
    return {**render_options(m), **extra}


def _rounds(m: DictConfig, full: int, key_start: str, key_factor: str) -> list[int]:
    """Image sizes of the rounds: start, start * factor, ... up to ``full`` (the last is ``full``)."""
    start, factor = int(m.get(key_start) or full), float(m.get(key_factor) or 1.2)
    if factor <= 1:
        raise ValueError(f"method.{key_factor} must be > 1, got {factor}")
    sizes = [min(start, full)]
    while sizes[-1] < full:
        sizes.append(min(full, max(sizes[-1] + 1, round(sizes[-1] * factor))))
    return sizes


class _Tracked:
    """Optimizer factory that remembers the optimizer it built (so an image op can update it)."""

    def __init__(self, factory):
        self.factory, self.opt = factory, None

    def __call__(self, params):
        self.opt = self.factory(params)
        return self.opt


def _resize_op(sizes: list[int], steps_per_round: int, tracked: _Tracked):
    """Image op: at the end of each round, replace the pixel tensor by its upscaled copy (in the
    Param and in the optimizer, whose state for it is reset)."""

    def op(step, param):
        k = (step + 1) // steps_per_round
        if (step + 1) % steps_per_round == 0 and k < len(sizes):
            old = param.params[0]
            new = F.interpolate(old.detach(), size=(sizes[k], sizes[k]), mode="bicubic", align_corners=False)
            new = new.contiguous().requires_grad_(True)
            param.params[0] = new
            if tracked.opt is not None:
                for group in tracked.opt.param_groups:
                    group["params"] = [new if p is old else p for p in group["params"]]
                tracked.opt.state.pop(old, None)

    return op


# -- methods ----------------------------------------------------------------------------------
@register_method("pixel")
def pixel(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Plain gradient ascent on the pixels from noise, clipped to [0, 1] (CS231n-style class
    visualization)."""
    m = cfg.method
    param = pixel_param(n, _size(cfg, clf), cfg.seed, device, m.init_mean, m.init_std)
    ops = [R.clip_op(0.0, 1.0)] if m.get("clip", True) else []
    return Setup(param, instantiate(m.optimizer), _render(m, image_ops=ops))


@register_method("pixel_regularized")
def pixel_regularized(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Regularized gradient ascent (Yosinski et al. 2015): L2 decay, Gaussian blur every k steps,
    median filter every k steps, clipping; the returned image is the last pure gradient step (no
    regularization after it, only clipping).

    The engine returns the image it fed to the classifier at its last step, i.e. the state after
    step ``steps - 2``; the regularization ops are skipped from that step on, so the result is
    ``clip(x + lr * grad)`` of the final update, as the original's ``if i != nbIters - 1`` does."""
    m = cfg.method
    steps = int(m.steps)
    skip = steps - 2 if m.get("pure_last", True) else None
    param = pixel_param(n, _size(cfg, clf), cfg.seed, device, m.init_mean, m.init_std)
    ops = [
        R.decay_op(float(m.decay), 0.5, skip),
        R.blur_op(float(m.blur_sigma), int(m.blur_every), skip),
        R.median_op(int(m.median_size), int(m.median_every), skip),
        R.clip_op(0.0, 1.0),
    ]
    return Setup(param, instantiate(m.optimizer), _render(m, image_ops=ops, final="last"))


@register_method("multiscale")
def multiscale(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """The Keras filter-visualization recipe: optimize a small image, upscale it by ``factor`` every ``steps_per_round`` steps
    until it reaches full size.  One engine call: the rounds are an image op that resizes the
    pixel tensor (the NormalizedGradient step is stateless, so no optimizer state is lost)."""
    m = cfg.method
    full = _size(cfg, clf)
    sizes = _rounds(m, full, "start_size", "factor")
    spr = int(m.steps_per_round)
    param = pixel_param(n, sizes[0], cfg.seed, device, m.init_mean, m.init_std)
    opt = _Tracked(instantiate(m.optimizer))
    ops = [_resize_op(sizes, spr, opt), R.clip_op(0.0, 1.0)]
    opts = _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    opts["steps"] = spr * len(sizes)
    return Setup(param, opt, opts)


@register_method("tv_lp")
def tv_lp(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """After Mahendran & Vedaldi: total variation + L6 penalties, jitter, Adam."""
    m = cfg.method
    param = pixel_param(n, _size(cfg, clf), cfg.seed, device, m.init_mean, m.init_std, penalty=_penalty(m))
    ops = [R.clip_op(0.0, 1.0)]
    return Setup(
        param, instantiate(m.optimizer), _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    )


@register_method("fourier")
def fourier(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Lucid's strong baseline: Fourier spectrum, decorrelated colour, sigmoid, transformation robustness."""
    m = cfg.method
    f = m.get("fourier") or {}
    param = fourier_param(
        n,
        _size(cfg, clf),
        cfg.seed,
        device,
        sd=float(f.get("sd", 0.01)),
        decay_power=float(f.get("decay_power", 1.0)),
        decorrelated=bool(f.get("decorrelate", True)),
    )
    return Setup(param, instantiate(m.optimizer), _render(m, transforms=_transforms(cfg, device)))


def _fraction_range(m: DictConfig, key: str) -> tuple[float, float]:
    value = m.get(key)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"method.{key}={value!r}: must be two numbers [low, high]") from None
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"method.{key}=[{lo:g}, {hi:g}]: must satisfy 0 < low <= high <= 1")
    return lo, hi


@register_method("maco")
def maco(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Fel et al. 2023: a fixed magnitude spectrum (real photos'), an optimized phase; ``crops``
    random crops per step (side a fraction in ``crop_scale`` of the image's) resized to the
    classifier's input, with noise; NAdam.  The run also saves each image's transparency map."""
    m = cfg.method
    size = int_value("method.size", m.get("size") or clf.input_size, 8)
    crops = int_value("method.crops", m.get("crops"), 1)
    noise = float_value("method.noise", m.get("noise") or 0.0)
    std = float_value("method.phase_std", m.get("phase_std", 1.0), 1e-6)
    scale = _fraction_range(m, "crop_scale")
    param = maco_param(n, size, load_magnitude(m.get("magnitude"), size), cfg.seed, device, std)
    gen = transform_generator(cfg, device=device)
    views = [T.crops(crops, scale, clf.input_size, gen, noise, wrap=bool(m.get("crop_wrap", True)))]
    return Setup(param, instantiate(m.optimizer), _render(m, transforms=views))


def _dream(cfg: DictConfig, clf: Classifier, n: int, device, layer: str | None) -> Setup:
    m = cfg.method
    full = _size(cfg, clf)
    img = _image(cfg, "image", full)
    sizes = _rounds(m, full, "start_size", "octave_scale") if int(m.octaves) > 1 else [full]
    if int(m.octaves) > 1:
        sizes = sizes[-int(m.octaves) :]
        small = F.interpolate(img[None], size=(sizes[0], sizes[0]), mode="bilinear", align_corners=False)[0]
    else:
        small = img
    param = pixel_param(n, sizes[0], cfg.seed, device, init=small, std=float(m.init_std))
    spr = int(m.steps_per_octave)
    opt = _Tracked(instantiate(m.optimizer))
    ops = [_resize_op(sizes, spr, opt), R.clip_op(0.0, 1.0)]
    opts = _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    opts["steps"] = spr * len(sizes)
    objective = (lambda bo: LayerL2(layer, len(bo))) if layer else None
    return Setup(param, opt, opts, objective)


@register_method("deepdream")
def deepdream(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """DeepDream from ``method.image``: octaves (small to full size by ``octave_scale``), jitter and
    zoom transforms, normalized gradient steps; maximizes the mean square of ``method.layer``
    (``method.layer=null``: the targets' own objective instead)."""
    layer = cfg.method.get("layer")
    if layer:
        clf.resolve_layer(str(layer))
    return _dream(cfg, clf, n, device, str(layer) if layer else None)


@register_method("class_dream")
def class_dream(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """A class-guided dream (Gerretsen & Grinsztajn): DeepDream's octaves, jitter and zoom, starting from
    ``method.image``, maximizing the targets (e.g. ``target=class:water_ouzel``)."""
    return _dream(cfg, clf, n, device, None)


@register_method("inversion")
def inversion(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Mahendran & Vedaldi: reconstruct ``method.image`` from its features at ``method.layer``
    with a TV (and optional Lp) prior.  The targets only set the batch size: every row
    reconstructs the same image (seeded alike)."""
    m = cfg.method
    size = _size(cfg, clf)
    ref_img = _image(cfg, "image", size).to(device)[None]
    layer = str(m.layer)
    ref = features(clf, ref_img, [layer])[layer]
    param = pixel_param(n, size, cfg.seed, device, m.init_mean, m.init_std, penalty=_penalty(m))
    ops = [R.clip_op(0.0, 1.0)]
    opts = _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    return Setup(param, instantiate(m.optimizer), opts, lambda bo: Inversion(ref, layer, len(bo)))


def _weights(layers, decay: float = 1.0) -> dict[str, float]:
    """{layer: decay^k} for the k-th layer of a list."""
    return {str(ly): float(decay) ** k for k, ly in enumerate(layers or [])}


@register_method("style")
def style(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Gatys et al.: content loss at ``method.content_layers``, Gram style loss at
    ``method.style_layers``, TV prior; starts from the content image plus a little noise."""
    m = cfg.method
    size = _size(cfg, clf)
    content = _image(cfg, "content", size).to(device)[None]
    style_img = _image(cfg, "style", size).to(device)[None]
    cw, sw = _weights(m.content_layers), _weights(m.style_layers, float(m.get("style_decay", 1.0)))
    if not cw and not sw:
        raise ValueError("method=style needs method.content_layers or method.style_layers")
    cf = features(clf, content, list(cw)) if cw else {}
    sf = features(clf, style_img, list(sw)) if sw else {}
    param = pixel_param(
        n, size, cfg.seed, device, init=content[0], std=float(m.init_std), penalty=_penalty(m)
    )
    alpha, beta = float(m.alpha), float(m.beta)
    ops = [R.clip_op(0.0, 1.0)]
    opts = _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    return Setup(
        param, instantiate(m.optimizer), opts, lambda bo: Style(cf, sf, cw, sw, alpha, beta, len(bo))
    )
