"""Classifiers: the wrapper every method talks to, and the one factory that builds them.

``wrapper`` (:class:`Classifier`: normalization, eval mode, layer names, head, recording),
``registry`` (:func:`build_classifier`, from a name or a config node, onto a device),
``weights`` (weights files and the offline messages), ``zoo`` (VGG16, torchvision, timm,
EfficientNet-Lite) and ``tiny`` (a small random CNN for tests).
"""

from . import tiny as _tiny  # noqa: F401  (registers classifier=tiny)
from . import zoo as _zoo  # noqa: F401  (registers the ImageNet classifiers)
from .registry import (
    CLASSIFIERS,
    build_classifier,
    classifier_class_names,
    list_classifiers,
    register_classifier,
)
from .tiny import TinyNet
from .weights import WeightsUnavailableError, load_state, load_weights_file
from .wrapper import HEADS, Activation, Classifier, LayerLookupError
from .zoo import timm_model, torchvision_model, vgg16

__all__ = [
    "CLASSIFIERS",
    "HEADS",
    "Activation",
    "Classifier",
    "LayerLookupError",
    "TinyNet",
    "WeightsUnavailableError",
    "build_classifier",
    "classifier_class_names",
    "list_classifiers",
    "load_state",
    "load_weights_file",
    "register_classifier",
    "timm_model",
    "torchvision_model",
    "vgg16",
]
