"""The classifier registry and its one factory, :func:`build_classifier`.

``build_classifier("efficientnet_lite0")``, ``build_classifier("timm", arch="resnet50")`` or
``build_classifier(cfg.classifier, device)`` (a config node with ``_target_``, as
``conf/classifier/*.yaml`` has): every tool builds its classifier here.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

import torch
from omegaconf import OmegaConf

from ..classes import ClassNames, imagenet
from .wrapper import Classifier

CLASSIFIERS: dict[str, Callable[..., Classifier]] = {}


def register_classifier(name: str):
    def deco(fn):
        CLASSIFIERS[name] = fn
        return fn

    return deco


def list_classifiers() -> list[str]:
    return sorted(CLASSIFIERS)


def build_classifier(name, device=None, **kwargs) -> Classifier:
    """The one classifier factory.

    ``name``: a registered name (``"vgg16"``, ``"efficientnet_lite0"``, ``"timm"`` with
    ``arch=...``; ``kwargs`` go to its builder) or a classifier config node (``cfg.classifier``:
    ``_target_`` and its arguments).  ``device``: where the classifier goes (None: the CPU)."""
    if OmegaConf.is_config(name) or isinstance(name, Mapping):
        clf = _from_config(name, **kwargs)
    else:
        name = str(name)
        if name not in CLASSIFIERS:
            close = difflib.get_close_matches(name, CLASSIFIERS, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown classifier {name!r}.{hint} Available: {', '.join(list_classifiers())}")
        clf = CLASSIFIERS[name](**kwargs)
    return clf.to(torch.device(device)) if device is not None else clf


def _from_config(node, **kwargs) -> Classifier:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:  # surface the builder's own message (offline weights...)
        raise (e.__cause__ or e) from None


def classifier_class_names(node) -> ClassNames | None:
    """The class names a classifier config (``cfg.classifier``) will have, known without building
    it or loading its weights (targets are checked against them first); None when only the built
    model can tell (timm, other builders)."""
    try:
        if str(node.get("_target_", "")) != "genviz.classifiers.build_classifier":
            return None
        name = str(node.get("name"))
        if name == "vgg16" or name.startswith("efficientnet_lite"):
            return imagenet()
        if name == "tiny":
            return ClassNames.numbered(int(node.get("num_classes", 10)))
        if name == "torchvision":
            import torchvision.models as tvm

            wenum = tvm.get_model_weights(str(node.get("arch")))
            weights = str(node.get("weights", "DEFAULT"))
            w = wenum[weights] if weights != "DEFAULT" else wenum.DEFAULT
            return imagenet() if len(w.meta.get("categories", [])) == 1000 else None
    except Exception:  # the builder itself reports a bad config
        return None
    return None
