"""The seeds' other methods as baselines in the same engine (issue 4).

pixel, pixel_regularized (seeds 000/001), multiscale (seed 002), tv_lp, deepdream,
class_dream, inversion, style (seed 004) and fourier (Lucid's parameterization).
Each reads its options from ``cfg.method`` (conf/method/<name>.yaml); the targets
come from ``target=`` as for the generator prior.  Methods that start from an
image read ``method.image`` (or ``method.content`` / ``method.style``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from . import regularizers as R
from . import transforms as T
from .classifiers import Classifier
from .fourier import fourier_param
from .images import load_image
from .methods import Setup, register_method, render_options, transform_generator
from .pixel import pixel_param


class NormalizedGradient(torch.optim.Optimizer):
    """Gradient step normalized per image: p <- p - lr * g / rms(g) (the Keras filter example and
    DeepDream's step).  Stateless, so the tensor may change size between steps (multiscale, octaves),
    and each row's step depends only on its own gradient."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                rms = g.pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (g.dim() - 1)))
                p.sub_(group["lr"] * g / (rms + group["eps"]))


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


# -- objectives -------------------------------------------------------------------------------
class LayerL2:
    """DeepDream: maximize the mean square of a layer's activation (every row the same layer)."""

    def __init__(self, layer: str, n: int):
        self.layer, self.n, self.layers = layer, n, [layer, "head"]

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        a = store[self.layer].post
        s = a.pow(2).flatten(1).mean(1)
        return s, s.detach()


def _features(clf: Classifier, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    with torch.no_grad(), clf.recording(layers) as store:
        clf.run(clf.fit_input(x), store)
    return {ly: store[ly].post.detach() for ly in layers}


def _gram(a: torch.Tensor) -> torch.Tensor:
    B, C = a.shape[:2]
    f = a.reshape(B, C, -1)
    return f @ f.transpose(1, 2) / f.shape[-1]


class Inversion:
    """Mahendran & Vedaldi: minimize ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 at ``layer``.
    Reported target: exp(-relative error) in (0, 1], 1 = perfect reconstruction."""

    def __init__(self, ref: torch.Tensor, layer: str, n: int):
        self.ref, self.layer, self.n, self.layers = ref, layer, n, [layer, "head"]
        self.norm = ref.pow(2).flatten(1).sum(1).clamp_min(1e-12)

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        d = (store[self.layer].post - self.ref).pow(2).flatten(1).sum(1) / self.norm
        return -d, torch.exp(-d.detach())


class Style:
    """Gatys et al.: alpha * sum_l v_l content_l + beta * sum_l w_l style_l (minimized).
    content_l = mean squared feature difference, style_l = squared Gram difference / (4 C^2)
    (Grams normalized by the number of positions).  Reported target: 1 / (1 + loss)."""

    def __init__(self, content: dict, style: dict, cw: dict, sw: dict, alpha: float, beta: float, n: int):
        self.content, self.style = content, {k: _gram(v) for k, v in style.items()}
        self.cw, self.sw, self.alpha, self.beta, self.n = cw, sw, alpha, beta, n
        self.layers = sorted(set(cw) | set(sw) | {"head"})

    def __len__(self) -> int:
        return self.n

    def score(self, store):
        loss = 0.0
        for ly, w in self.cw.items():
            loss = loss + self.alpha * w * (store[ly].post - self.content[ly]).pow(2).flatten(1).mean(1)
        for ly, w in self.sw.items():
            g = _gram(store[ly].post)
            C = g.shape[-1]
            loss = loss + self.beta * w * (g - self.style[ly]).pow(2).flatten(1).sum(1) / (4 * C * C)
        return -loss, 1.0 / (1.0 + loss.detach())


# -- methods ----------------------------------------------------------------------------------
@register_method("pixel")
def pixel(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Seeds 000/001: plain gradient ascent on the pixels from noise, clipped to [0, 1]."""
    m = cfg.method
    param = pixel_param(n, _size(cfg, clf), cfg.seed, device, m.init_mean, m.init_std)
    ops = [R.clip_op(0.0, 1.0)] if m.get("clip", True) else []
    return Setup(param, instantiate(m.optimizer), _render(m, image_ops=ops))


@register_method("pixel_regularized")
def pixel_regularized(cfg: DictConfig, clf: Classifier, n: int, device) -> Setup:
    """Seeds 000/001: L2 decay, Gaussian blur every k steps, median filter every k steps, clipping;
    the returned image is the last pure gradient step (no regularization after it, only clipping).

    The engine returns the image it fed to the classifier at its last step, i.e. the state after
    step ``steps - 2``; the regularization ops are skipped from that step on, so the result is
    ``clip(x + lr * grad)`` of the final update, as the seeds' ``if i != nbIters - 1`` does."""
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
    """Seed 002: optimize a small image, upscale it by ``factor`` every ``steps_per_round`` steps
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
    """Seed 004 (after Mahendran & Vedaldi): total variation + L6 penalties, jitter, Adam."""
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
    """Seed 004's class-guided dream: DeepDream's octaves, jitter and zoom, starting from
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
    ref = _features(clf, ref_img, [layer])[layer]
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
    cf = _features(clf, content, list(cw)) if cw else {}
    sf = _features(clf, style_img, list(sw)) if sw else {}
    param = pixel_param(
        n, size, cfg.seed, device, init=content[0], std=float(m.init_std), penalty=_penalty(m)
    )
    alpha, beta = float(m.alpha), float(m.beta)
    ops = [R.clip_op(0.0, 1.0)]
    opts = _render(m, image_ops=ops, transforms=_transforms(cfg, device))
    return Setup(
        param, instantiate(m.optimizer), opts, lambda bo: Style(cf, sf, cw, sw, alpha, beta, len(bo))
    )
