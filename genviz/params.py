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

import numpy as np
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
    # redraw(j): set the params in place to start number j (0: the configured start; j > 0: other
    # seeded draws, the same for every row) and rewind the parameterization's random streams to
    # their start.  None: this parameterization has one start only.
    redraw: Callable[[int], None] | None = None
    # MACO: the accumulated |d loss / d image| [B, 3, H, W], filled by the backward passes
    transparency: torch.Tensor | None = None
    # decode(rows): the clean images (no code noise) of any number of rows of params[0]: how
    # init_candidates scores many starts per forward pass
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None
    # start_label(j): what start j is, in words (a bank start: the class of the photo whose code
    # it is), written to results.json as ``start``; None: starts are not described
    start_label: Callable[[int], str | None] | None = None


def _seeded(seed: int, device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _candidate_seed(seed: int, j: int) -> int:
    """The seed of candidate start ``j`` of a run seeded ``seed``: a stream apart from every run
    seed (``SeedSequence`` mixes both), within ``manual_seed``'s range."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(j), 0x5EED]).generate_state(1)[0])


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


def _need_stats(stats: dict | None, what: str) -> dict:
    if stats is None:
        raise ValueError(
            f"{what} needs the code statistics of the decoder's training codes, and this decoder "
            "has none (an untrained generator, or a checkpoint from before they were recorded). "
            "Use generator.param.alpha.init=ones and generator.param.code_range.kind=none, or "
            "retrain with train_dae.py (every checkpoint now records them)."
        )
    return stats


def _init_alpha(
    init: str, batch: int, n: int, gen: torch.Generator, device, stats: dict | None = None, scale: float = 1.0
) -> torch.Tensor:
    if init in ("mean", "sample"):  # start at the training codes' mean (+ a seeded draw of their spread)
        st = _need_stats(stats, f"generator.param.alpha.init={init}")
        a = st["mean"].clone()
        if init == "sample":
            a = a + scale * st["std"] * torch.randn(1, n, generator=gen, device=device)
        return a.repeat(batch, 1).requires_grad_(True)
    if init == "ones":
        a = torch.ones(1, n, device=device)
    elif init == "glorot":  # Keras' default for the 1x1 locally connected layer: U(-sqrt(3), sqrt(3))
        a = (torch.rand(1, n, generator=gen, device=device) * 2 - 1) * 3**0.5
    elif init == "normal":
        a = torch.randn(1, n, generator=gen, device=device)
    else:
        raise ValueError(f"alpha init must be ones, glorot or normal, got {init!r}")
    return a.repeat(batch, 1).requires_grad_(True)


def _code_range(spec: dict, stats: dict | None) -> Callable | None:
    """None, or a smooth map of every code dimension into mean +- sigma * std."""
    if spec["kind"] == "none":
        return None
    if spec["kind"] != "stats":
        raise ValueError(f"generator code_range kind must be 'none' or 'stats', got {spec['kind']!r}")
    st = _need_stats(stats, "generator.param.code_range.kind=stats")
    sigma = float(spec["sigma"])
    if not sigma > 0:
        raise ValueError(f"generator.param.code_range.sigma must be > 0, got {sigma}")
    mu, half = st["mean"], (sigma * st["std"]).clamp_min(1e-6)
    return lambda c: mu + half * torch.tanh((c - mu) / half)


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


def _code_prior(path, decoder: Decoder | None, n: int):
    """The code prior of ``generator.param.penalty.kind=code_dae``: the file ``path``, else the one
    the pretrained decoder carries; checked against the code's size."""
    from . import code_prior

    if path:
        prior = code_prior.load(path)
    else:
        source = decoder.code_prior_source if decoder is not None else None
        if source is None:
            raise ValueError(
                "generator.param.alpha.init=bank and penalty.kind=code_dae (generator=dae_fast) need a "
                "code prior, and this generator has none (an untrained generator, or a checkpoint without "
                "one): make one with `python -m genviz.dae.codes CHECKPOINT` (minutes; written beside the "
                "checkpoint, where it is found), or use generator=dae_fast_sampled (no code prior)"
            )
        prior = code_prior.from_dict(source) if isinstance(source, dict) else code_prior.load(source)
    recorded = getattr(prior, "decoder_fingerprint", None)
    if decoder is not None and recorded and recorded != code_prior.fingerprint(decoder):
        raise ValueError(
            "the code prior was trained on the codes of another decoder (or of an earlier checkpoint of "
            "this run): train one for this checkpoint with `python -m genviz.dae.codes CHECKPOINT`"
        )
    if prior.code_dim != n:
        raise ValueError(
            f"the code prior is for codes of {prior.code_dim} dimensions, the decoder's have {n}: "
            "train one for this decoder with `python -m genviz.dae.codes CHECKPOINT`"
        )
    return prior


def _bank_order(prior, gen: torch.Generator, relu: bool) -> torch.Tensor:
    """A seeded order of the code prior's real codes: start j is code ``order[j % len]``, so
    ``init_candidates`` = the bank's size tries each real code once."""
    if relu:  # alpha.relu would zero the bank code's negatives
        raise ValueError(
            "generator.param.alpha.init=bank starts from real codes, which have negative values: "
            "set generator.param.alpha.relu=false"
        )
    if prior is None or not len(prior.bank):
        raise ValueError(
            "generator.param.alpha.init=bank starts from codes of real photos that the code prior keeps, "
            "and this one keeps none: retrain it with `python -m genviz.dae.codes CHECKPOINT`"
        )
    return torch.randperm(len(prior.bank), generator=gen, device=gen.device)


def _bank_label(prior, index: int) -> str:
    """Bank code ``index`` in words: ``a photo of <class> (<wnid>)``."""
    from .classes import imagenet

    wnid = prior.bank_labels[index]
    names = imagenet()
    try:
        return f"a photo of {names.name(names.resolve(wnid))} ({wnid})"
    except (KeyError, ValueError):
        return f"a photo of {wnid}"


def _bank_start(prior, batch: int, j: int, code_range: dict, stats: dict | None) -> torch.Tensor:
    """Real code ``j`` of the code prior, the same for every row; under a
    ``code_range`` squash, the value whose squash is that code (exactly so within 2.985 standard
    deviations of the mean; a dimension beyond is pulled in to there)."""
    c = prior.bank[j : j + 1].clone()
    if code_range["kind"] == "stats":
        st = _need_stats(stats, "generator.param.code_range.kind=stats")
        half = (float(code_range["sigma"]) * st["std"]).clamp_min(1e-6)
        c = st["mean"] + half * torch.atanh(((c - st["mean"]) / half).clamp(-0.995, 0.995))
    return c.repeat(batch, 1).requires_grad_(True)


def build_decoder(mode: str, decoder: dict | None, checkpoint: str | None) -> Decoder:
    """Pretrained: the checkpoint's decoder (none given: the one genviz ships).
    Untrained: a fresh ``Decoder(**decoder)``."""
    if mode == "pretrained":
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
    code_range: dict | None = None,
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

    With a decoder that carries its training codes' statistics (``train_dae.py`` checkpoints
    and the shipped decoder), ``alpha.init=mean|sample`` starts from the mean code (plus
    ``alpha.scale`` x a seeded draw of its spread), ``code_range.kind=stats`` keeps every code
    dimension inside mean +- ``code_range.sigma`` standard deviations (a smooth tanh squash, so
    gradients never die at the bound), and ``penalty.kind=code_z2`` penalizes the code's
    squared distance from the mean in standard deviations (averaged over dimensions).
    ``penalty.kind=code_dae`` penalizes the energy of a code prior (:mod:`genviz.code_prior`,
    PPGN's denoising autoencoder on real codes): ``penalty.prior`` a file, or null for the one
    the decoder's checkpoint carries (or that lies beside it).
    """
    noise = {"kind": "multiplicative", "mean": 1.0, "std": 0.05, **(noise or {})}
    alpha = {"init": "ones", "relu": True, "scale": 1.0, **(alpha or {})}
    code_range = {"kind": "none", "sigma": 3.0, **(code_range or {})}
    penalty = {"kind": "alpha_l2", "weight": 0.1, **(penalty or {})}
    gen = _seeded(seed, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        single = build_decoder(mode, decoder, checkpoint)
    if mode == "pretrained":
        net = single
        net.requires_grad_(False)
    elif mode == "untrained":
        kwargs = dict(
            code_channels=single.code_channels,
            code_size=single.code_size,
            channels=single.channels,
            layout=single.layout,
            upsample=single.upsample,
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
    stats = None  # the training codes' statistics, as [1, n] rows on the device
    if mode == "pretrained" and single.code_stats is not None:
        stats = {k: v.to(device).view(1, n) for k, v in single.code_stats.items()}
    use_relu = bool(alpha["relu"])
    prior = None  # the code prior (genviz.code_prior), when the start or the penalty uses it
    if alpha["init"] == "bank" or penalty["kind"] == "code_dae":
        prior = _code_prior(penalty.get("prior"), single if mode == "pretrained" else None, n).to(device)
    if alpha["init"] == "bank":
        order = _bank_order(prior, gen, use_relu)
        bank_index = lambda j: int(order[j % len(order)])  # the bank code start j takes
        a = _bank_start(prior, batch, bank_index(0), code_range, stats)
    else:
        a = _init_alpha(alpha["init"], batch, n, gen, device, stats, float(alpha["scale"]))
    f = _noise_fn(noise["kind"], noise["mean"], noise["std"], n, gen, device)
    squash = _code_range(code_range, stats)

    def shape_code(c: torch.Tensor) -> torch.Tensor:
        c = torch.relu(c) if use_relu else c
        return squash(c) if squash else c

    def code() -> torch.Tensor:
        return shape_code(f() * a)

    run = _compiled(net) if compile else net
    decode = None  # the clean images of any rows of ``a`` (the choice among init_candidates)
    if mode == "untrained":
        image_fn = lambda: to_pixels(run(code().reshape(1, -1)))
    else:
        decode = lambda rows: to_pixels(run(shape_code(rows)))
        image_fn = lambda: decode(f() * a)

    w = float(penalty["weight"])
    if penalty["kind"] == "alpha_l2":
        scale = 1.0 / n if penalty.get("mean", False) else 1.0
        pen = lambda: w * scale * (a**2).sum(1)
    elif penalty["kind"] == "code_z2":
        st = _need_stats(stats, "generator.param.penalty.kind=code_z2")
        mu, sd = st["mean"], st["std"].clamp_min(1e-6)
        pen = lambda: w * ((a - mu) / sd).pow(2).mean(1)
    elif penalty["kind"] == "code_dae":
        pen = lambda: w * prior.energy(shape_code(a))  # the code the decoder sees, without its noise
    elif penalty["kind"] == "output_gamma_l1":  # gamma of the BN producing the image channels
        gamma = net.output_bn.weight
        pen = lambda: w * gamma.abs().view(-1, 3).sum(1).expand(batch)
    elif penalty["kind"] == "none":
        pen = None
    else:
        raise ValueError(f"unknown generator penalty {penalty['kind']!r}")
    params = [a] + ([p for p in net.parameters()] if mode == "untrained" else [])
    redraw = None
    if mode == "pretrained" and alpha["init"] in ("sample", "bank"):
        first, noise_state = a.detach().clone(), gen.get_state()

        def redraw(j: int) -> None:
            """Start j (j = 0: the configured draw; j > 0: another draw from the statistics, from
            a stream of its own, never another seed's start), and the code noise rewound to its
            start, so that every candidate is scored under the same noise and the run after the
            choice sees the noise it would have seen without candidates."""
            with torch.no_grad():
                if j == 0:
                    a.copy_(first)
                else:
                    if alpha["init"] == "bank":
                        a.copy_(_bank_start(prior, batch, bank_index(j), code_range, stats))
                    else:
                        g = _seeded(_candidate_seed(seed, j), device)
                        a.copy_(_init_alpha("sample", batch, n, g, device, stats, float(alpha["scale"])))
            gen.set_state(noise_state)

    start_label = None
    if mode == "pretrained" and alpha["init"] == "bank" and prior.bank_labels:
        start_label = lambda j: _bank_label(prior, bank_index(j))
    return Param(params, image_fn, pen, [net], redraw, decode=decode, start_label=start_label)
