"""Parameterizations: what is optimized, and how it becomes a batch of images.

A parameterization is a :class:`Param`: the tensors to optimize, an
``image_fn()`` returning images [B, 3, H, W] in RGB pixel space ([0, 1], not
clamped), and a ``penalty()`` returning the regularizer R per image [B].
Every image of the batch is an independent problem: row i depends only on its
own parameters, so a batch gives the same images as one-by-one runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .generator import Decoder, decoder_from_checkpoint, to_pixels

log = logging.getLogger(__name__)


@dataclass
class Param:
    params: list[torch.Tensor]
    image_fn: Callable[[], torch.Tensor]
    penalty: Callable[[], torch.Tensor] | None = None
    modules: list[nn.Module] = field(default_factory=list)  # kept for train/eval and inspection


def _seeded(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _noise_fn(kind: str, mean: float, std: float, n: int, gen: torch.Generator, device) -> Callable:
    """Fresh Gaussian noise on the constants f (all ones) each call, shared by the batch rows
    (the same seed gives every target the noise a one-target run would see)."""
    ones = torch.ones(1, n, device=device)
    if kind == "none" or std == 0:
        return lambda: ones
    if kind == "additive":
        return lambda: ones + mean + std * torch.randn(1, n, generator=gen, device=device)
    if kind == "multiplicative":
        return lambda: ones * (mean + std * torch.randn(1, n, generator=gen, device=device))
    raise ValueError(f"noise kind must be additive, multiplicative or none, got {kind!r}")


def _init_alpha(init: str, batch: int, n: int, gen: torch.Generator, device) -> torch.Tensor:
    if init == "ones":
        a = torch.ones(1, n, device=device)
    elif init == "glorot":  # Keras' default for the 1x1 locally connected layer: U(-sqrt(3), sqrt(3))
        a = (torch.rand(1, n, generator=gen, device=device) * 2 - 1) * 3**0.5
    elif init == "normal":
        a = torch.randn(1, n, generator=gen, device=device)
    else:
        raise ValueError(f"alpha init must be ones, glorot or normal, got {init!r}")
    return a.repeat(batch, 1).requires_grad_(True)


def _compiled(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(net)``, falling back to the eager module (with one warning) where the
    compiler cannot run (no C++ toolchain, an unsupported platform...)."""
    state = {"fn": torch.compile(net)}

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return state["fn"](x)
        except Exception as e:
            if state["fn"] is net:
                raise
            log.warning("torch.compile failed (%s: %s); running the generator eagerly", type(e).__name__, e)
            state["fn"] = net
            return net(x)

    return run


def build_decoder(decoder: dict | None, checkpoint: str | None) -> Decoder:
    if checkpoint:
        return decoder_from_checkpoint(checkpoint)
    return Decoder(**dict(decoder or {}))


def generator_prior(
    batch: int,
    mode: str = "pretrained",
    decoder: dict | None = None,
    checkpoint: str | None = None,
    norm_stats: str = "module",
    noise: dict | None = None,
    alpha: dict | None = None,
    penalty: dict | None = None,
    seed: int = 0,
    device="cpu",
    channels_last: bool = False,
    compile: bool = False,
) -> Param:
    """The paper's coupled generator: code = ReLU?(eps(f) * alpha) -> decoder -> image.

    ``mode="pretrained"``: a frozen (DAE) decoder, only alpha is optimized.
    ``mode="untrained"``: a randomly initialized decoder per target whose weights
    are optimized with alpha (B decoders run as one grouped network).
    ``channels_last`` / ``compile`` (``torch.compile``, fusing the decoder's memory-bound
    BatchNorm/ReLU/upsampling) are speed levers; see benchmarks/results/engine.md.
    """
    noise = {"kind": "multiplicative", "mean": 1.0, "std": 0.05, **(noise or {})}
    alpha = {"init": "ones", "relu": True, **(alpha or {})}
    penalty = {"kind": "alpha_l2", "weight": 0.1, **(penalty or {})}
    gen = _seeded(seed, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        single = build_decoder(decoder, checkpoint if mode == "pretrained" else None)
    if mode == "pretrained":
        net = single
        net.requires_grad_(False)
    elif mode == "untrained":
        kwargs = dict(
            code_channels=single.code_channels,
            code_size=single.code_size,
            channels=single.channels,
            layout=single.layout,
        )
        net = Decoder(**kwargs, groups=batch)
        with torch.no_grad():  # every target starts from the same seeded decoder
            for p_b, p_1 in zip(net.state_dict().values(), single.state_dict().values()):
                if p_b.dim() == 0:
                    p_b.copy_(p_1)
                else:
                    p_b.copy_(p_1.repeat(batch, *([1] * (p_1.dim() - 1))))
    else:
        raise ValueError(f"generator mode must be 'pretrained' or 'untrained', got {mode!r}")
    net = net.to(device).eval()
    net.set_norm_stats(norm_stats)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    n = single.code_dim
    a = _init_alpha(alpha["init"], batch, n, gen, device)
    f = _noise_fn(noise["kind"], noise["mean"], noise["std"], n, gen, device)
    use_relu = bool(alpha["relu"])

    def code() -> torch.Tensor:
        c = f() * a
        return torch.relu(c) if use_relu else c

    run = _compiled(net) if compile else net
    if mode == "untrained":
        image_fn = lambda: to_pixels(run(code().reshape(1, -1)))
    else:
        image_fn = lambda: to_pixels(run(code()))

    w = float(penalty["weight"])
    if penalty["kind"] == "alpha_l2":
        scale = 1.0 / n if penalty.get("mean", False) else 1.0
        pen = lambda: w * scale * (a**2).sum(1)
    elif penalty["kind"] == "output_gamma_l1":  # gamma of the BN producing the image channels
        gamma = net.output_bn.weight
        pen = lambda: w * gamma.abs().view(-1, 3).sum(1).expand(batch)
    elif penalty["kind"] == "none":
        pen = None
    else:
        raise ValueError(f"unknown generator penalty {penalty['kind']!r}")
    params = [a] + ([p for p in net.parameters()] if mode == "untrained" else [])
    return Param(params, image_fn, pen, [net])
