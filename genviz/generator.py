"""The paper's generator (the DAE decoder) and the DAE encoder: one definition.

Decoder (METHOD.md, paper Table 2): code (C x h x w, 128 x 5 x 5 = 3200) ->
six stages of [upsample x2 -> conv -> BN -> conv -> BN] with ReLU after the
convs -> conv to 3 channels -> BN.  ``layout="paper"`` reproduces the authors'
mix of valid and same padding so that 5 -> 224 exactly:
5->10->9 | 18->16 | 32->30 | 60->58 | 116->113 | 226->224.
``layout="same"`` keeps every conv size-preserving (output = h * 2**stages),
which is what tiny test networks and reduced DAE configurations use.

``upsample`` picks how each stage doubles the size: ``nearest`` (the paper; its blocky
copies show as stripes in short optimizations), ``bilinear``, or learned: ``transposed``
(a 4x4 stride-2 transposed conv) or ``pixelshuffle`` (a conv to 4x the channels, then
sub-pixel rearrangement).

``groups=B`` builds B independent decoders in one network (grouped convs): the
untrained-generator mode optimizes a separate generator per target without a
Python loop over targets.

The decoder outputs an image in *ImageNet-standardized* space
((x - mean) / std, RGB); :func:`to_pixels` maps it to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_CHANNELS = (512, 256, 256, 128, 128, 64)
PAPER_PARAMETERS = 5_240_841  # paper Table 1, including the 3,200 alpha weights

# (kernel, padding) of the two convs of each stage in the authors' decoder.
_PAPER_CONVS = [
    ((2, 0), (2, "same")),
    ((3, 0), (3, 1)),
    ((3, 0), (3, 1)),
    ((3, 0), (3, 1)),
    ((4, 0), (3, 1)),
    ((3, 0), (3, 1)),
]


class KerasSameConv2d(nn.Conv2d):
    """Conv with Keras' 'same' padding for an even kernel (the extra row/column at the end)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0] - 1
        return super().forward(F.pad(x, (k // 2, k - k // 2, k // 2, k - k // 2)))


class Norm2d(nn.BatchNorm2d):
    """BatchNorm whose statistics source is explicit.

    ``stats="module"``: ordinary BatchNorm (batch statistics in train mode,
    running statistics in eval mode).  ``stats="instance"``: statistics of each
    sample alone, which is what the authors' Keras code computed (training mode,
    batch of one) and keeps batched targets independent of each other.
    """

    stats: str = "module"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stats == "instance":
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return super().forward(x)


UPSAMPLING = ("nearest", "bilinear", "transposed", "pixelshuffle")


def upsampler(mode: str, channels: int, groups: int = 1) -> nn.Module:
    """A x2 upsampling layer for ``channels * groups`` channels (groups stay independent)."""
    c = channels * groups
    if mode == "nearest":
        return nn.Upsample(scale_factor=2, mode="nearest")
    if mode == "bilinear":
        return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    if mode == "transposed":
        return nn.ConvTranspose2d(c, c, 4, stride=2, padding=1, groups=groups)
    if mode == "pixelshuffle":  # each group's 4*channels outputs are contiguous, so it stays in its group
        return nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1, groups=groups), nn.PixelShuffle(2))
    raise ValueError(f"generator upsample must be one of {', '.join(UPSAMPLING)}, got {mode!r}")


class Decoder(nn.Module):
    #: per-dimension {"mean", "std"} of the codes it was trained on (set by decoder_from_checkpoint)
    code_stats: dict | None = None
    #: where its code prior is (genviz.code_prior): the checkpoint's own "code_prior" entry (a dict)
    #: or the file beside the checkpoint, ``<checkpoint stem>.code_prior.pt`` (set by decoder_from_checkpoint)
    code_prior_source: dict | Path | None = None

    def __init__(
        self,
        code_channels: int = 128,
        code_size: int = 5,
        channels: Sequence[int] = PAPER_CHANNELS,
        layout: str = "paper",
        groups: int = 1,
        upsample: str = "nearest",
    ):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if layout not in ("paper", "same"):
            raise ValueError(f"generator layout must be 'paper' or 'same', got {layout!r}")
        if layout == "paper" and (len(channels) != 6 or code_size != 5):
            raise ValueError(
                "layout='paper' needs 6 stages and code_size=5 (5 -> 224 px); "
                "use layout='same' for other shapes"
            )
        self.code_channels, self.code_size = code_channels, code_size
        self.channels, self.layout, self.groups, self.upsample = channels, layout, groups, upsample
        g = groups
        layers: list[nn.Module] = []
        cin = code_channels
        for s, cout in enumerate(channels):
            layers.append(upsampler(upsample, cin, g))
            convs = _PAPER_CONVS[s] if layout == "paper" else ((3, 1), (3, 1))
            for k, pad in convs:
                conv = (
                    KerasSameConv2d(cin * g, cout * g, k, groups=g)
                    if pad == "same"
                    else nn.Conv2d(cin * g, cout * g, k, padding=pad, groups=g)
                )
                layers += [
                    conv,
                    nn.ReLU(),
                    Norm2d(cout * g),
                ]
                cin = cout
        layers += [nn.Conv2d(cin * g, 3 * g, 3, padding=1, groups=g), Norm2d(3 * g)]
        self.net = nn.Sequential(*layers)

    @property
    def code_dim(self) -> int:
        return self.code_channels * self.code_size**2

    @property
    def output_bn(self) -> Norm2d:
        """The BatchNorm that produces the 3 image channels (the paper's gamma)."""
        return self.net[-1]

    def output_size(self) -> int:
        with torch.no_grad():
            x = torch.zeros(1, self.code_dim * self.groups)
            was = self.training
            self.eval()
            out = self(x).shape[-1]
            self.train(was)
        return out

    def set_norm_stats(self, stats: str) -> None:
        """``module`` | ``instance`` for every BatchNorm; ``output``: running statistics inside,
        per-image statistics in the BatchNorm that makes the image, so that every image gets
        the per-channel contrast and mean colour (its learned gamma, beta) of the training
        images however far its code is from theirs."""
        if stats not in ("module", "instance", "output"):
            raise ValueError(f"norm stats must be 'module', 'instance' or 'output', got {stats!r}")
        for m in self.modules():
            if isinstance(m, Norm2d):
                m.stats = "module" if stats == "output" else stats
        if stats == "output":
            self.output_bn.stats = "instance"

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """code: [B, groups * code_dim] -> image [B * groups, 3, H, W] (standardized)."""
        b = code.shape[0]
        x = code.reshape(b, self.groups * self.code_channels, self.code_size, self.code_size)
        x = self.net(x)
        return x.reshape(b * self.groups, 3, x.shape[-2], x.shape[-1])


class Encoder(nn.Module):
    """DAE encoder (paper section 4.2): five [conv3x3-BN-ReLU x2, maxpool] blocks,
    dense 2048, dense code_dim (linear)."""

    def __init__(
        self,
        image_size: int = 224,
        channels: Sequence[int] = (32, 64, 128, 256, 512),
        hidden: int = 2048,
        code_dim: int = 3200,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for c in channels:
            for _ in range(2):
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                cin = c
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} pooling blocks")
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(), nn.Linear(hidden, code_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _stats(device=None, dtype=None):
    mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
    return mean, std


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Standardized image -> RGB in [0, 1] (not clamped)."""
    mean, std = _stats(x.device, x.dtype)
    return x * std + mean


def from_pixels(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> standardized image (the DAE's training target)."""
    mean, std = _stats(x.device, x.dtype)
    return (x - mean) / std


def count_parameters(module: nn.Module, with_bn_buffers: bool = True) -> int:
    """Parameters as Keras counts them (BN moving mean/var included)."""
    n = sum(p.numel() for p in module.parameters())
    if with_bn_buffers:
        n += sum(m.running_mean.numel() * 2 for m in module.modules() if isinstance(m, nn.BatchNorm2d))
    return n


SHIPPED_DECODER = Path(__file__).resolve().parent / "weights" / "dae_trunk_lite0.pt"
SHIPPED_NAMES = ("shipped", "default")


class CheckpointError(ValueError):
    """A generator checkpoint that cannot be used (with what to do about it)."""


def _read_checkpoint(path: str, map_location) -> dict:
    import pickle
    import zipfile

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not zipfile.is_zipfile(path):  # not a torch file at all (random bytes, a truncated file...)
            raise CheckpointError(f"{path}: not a readable checkpoint (not a torch zip archive)") from None
        raise CheckpointError(
            f"{path}: refused, it holds Python objects other than tensors and plain values, and "
            f"loading those could run code ({str(e).splitlines()[0][:200]}). Re-save only "
            "'hyper_parameters' (plain dicts) and 'state_dict' (tensors), as train_dae.py does."
        ) from None
    except Exception as e:  # truncated file, random bytes, not a torch file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a genviz DAE checkpoint (a {type(ckpt).__name__}, not a dict)")
    return ckpt


def decoder_from_checkpoint(path: str | None = None, map_location="cpu") -> Decoder:
    """Load the decoder of a ``train_dae.py`` checkpoint; ``None`` / ``"shipped"``: the one
    genviz ships (``genviz/weights/dae_trunk_lite0.pt``, benchmarks/results/dae_trunk_lite0.md).

    Format (shared with ``genviz.dae``): ``ckpt["hyper_parameters"]["decoder"]`` holds the
    Decoder kwargs, the state dict keys ``decoder.*`` its weights, and (since the code
    statistics exist) ``code_mean`` / ``code_std`` / ``code_count`` the training codes'
    statistics, attached to the decoder as ``code_stats`` (``None`` when absent).
    Loaded with ``weights_only=True``: a checkpoint cannot run code.
    """
    import os

    if path in (None, "", *SHIPPED_NAMES):
        path = str(SHIPPED_DECODER)
        if not SHIPPED_DECODER.is_file():
            raise FileNotFoundError(
                f"the shipped decoder {path} is missing from this install; reinstall genviz, or "
                "pass generator.param.checkpoint=PATH (a train_dae.py checkpoint)"
            )
    if path == "???" or not os.path.isfile(path):
        raise FileNotFoundError(
            f"generator checkpoint not found: {path!r}. Train one with `python train_dae.py` "
            "(its run directory has checkpoints/last.ckpt) and pass generator.param.checkpoint=PATH, "
            "leave generator.param.checkpoint unset for the decoder genviz ships, "
            "or use generator=untrained."
        )
    ckpt = _read_checkpoint(path, map_location)
    try:
        kwargs = dict(ckpt["hyper_parameters"]["decoder"])
        sd = ckpt["state_dict"]
        state = {k[len("decoder.") :]: v for k, v in sd.items() if k.startswith("decoder.")}
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path} is not a genviz DAE checkpoint (missing {e})") from None
    try:
        dec = Decoder(**kwargs)
        dec.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: its decoder does not load ({str(e).splitlines()[0][:300]})") from None
    dec.code_stats = code_stats(sd, dec.code_dim, path)
    beside = Path(path).with_suffix(".code_prior.pt")
    dec.code_prior_source = ckpt.get("code_prior") or (beside if beside.is_file() else None)
    return dec.eval()


def code_stats(sd: dict, n: int, path: str) -> dict | None:
    """The training codes' statistics of a checkpoint's state dict (``code_mean`` /
    ``code_std`` / ``code_count``), validated: None when absent or never updated
    (``code_count`` 0); a missing, mis-shaped or non-finite one is a :class:`CheckpointError`
    naming the file and the key (it would set every code the optimization starts from)."""
    if not any(k in sd for k in ("code_mean", "code_std", "code_count")):
        return None
    count = sd.get("code_count", 0)
    if isinstance(count, torch.Tensor) and count.numel() == 1:
        count = count.item()
    if isinstance(count, bool) or not isinstance(count, int | float) or not count >= 0:
        shown = (
            f"a tensor of shape {tuple(count.shape)}" if isinstance(count, torch.Tensor) else repr(count)[:60]
        )
        raise CheckpointError(f"{path}: code_count must be a count (a number >= 0), got {shown}")
    if count == 0:
        return None
    stats = {}
    for key, name in (("code_mean", "mean"), ("code_std", "std")):
        t = sd.get(key)
        if not isinstance(t, torch.Tensor) or t.numel() != n or not t.is_floating_point():
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise CheckpointError(
                f"{path}: {key} must be a float tensor of the decoder's {n} code dimensions, got "
                f"{'none' if t is None else shape}; retrain, or drop code_mean/code_std/code_count"
            )
        t = t.float().reshape(n)
        if not torch.isfinite(t).all() or (name == "std" and (t < 0).any()):
            raise CheckpointError(f"{path}: {key} holds non-finite or negative values")
        stats[name] = t
    return stats
