"""A frozen pretrained classifier read at named layers: the DAE's encoder trunk and its
perceptual loss.

``FrozenFeatures(name)`` builds any classifier genviz builds
(:func:`genviz.classifiers.build_classifier`) and freezes it (eval mode, no gradients);
``frozen(pixels, layers)`` returns ``{layer: activation}`` for RGB images in [0, 1].  The forward stops as soon as the
deepest requested layer has been computed, so a trunk cut at ``blocks4`` does not pay for
the rest of the network.

It is deliberately not an ``nn.Module`` attribute of the Lightning module that uses it
(see :class:`genviz.dae.DAE`): it is then not in the optimizer, not in the checkpoint, not
switched to train mode by Lightning and not wrapped for gradient synchronization by DDP.
It follows the device of the images it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class _Done(Exception):
    """Raised by the last hook: every requested layer has been recorded."""


class FrozenFeatures:
    def __init__(self, classifier: str | nn.Module, **kwargs):
        from genviz.classifiers import Classifier, build_classifier

        clf = classifier if isinstance(classifier, Classifier) else build_classifier(classifier, **kwargs)
        clf.eval().requires_grad_(False)
        self.classifier = clf
        self._device = torch.device("cpu")

    def check(self, layers: Sequence[str]) -> list[str]:
        """The layers, validated (an unknown name raises the classifier's list of valid ones)."""
        layers = list(dict.fromkeys(layers))
        if not layers:
            raise ValueError("no layer given to read features from")
        for name in layers:
            self.classifier.resolve_layer(name)
        return layers

    @property
    def name(self) -> str:
        return getattr(self.classifier, "name", type(self.classifier.model).__name__)

    def to(self, device) -> FrozenFeatures:
        device = torch.device(device)
        if device != self._device:
            self.classifier.to(device)
            self._device = device
        return self

    def __call__(self, pixels: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """RGB [0, 1] images [B, 3, H, W] (at their own size) -> {layer: activation}.

        Gradients flow to ``pixels`` (for the perceptual loss); the weights get none."""
        self.to(pixels.device)
        clf = self.classifier
        paths = {name: clf.resolve_layer(name) for name in layers}
        out: dict[str, torch.Tensor] = {}
        handles = []
        for name, path in paths.items():
            if path in ("logits", "head"):
                continue
            module = clf._modules_by_path[path]

            def hook(mod, inp, output, name=name):
                out[name] = output
                if len(out) == len(paths):
                    raise _Done

            handles.append(module.register_forward_hook(hook))
        try:
            logits = clf(pixels)
            out.setdefault("logits", logits)
            out.setdefault("head", clf.head(logits))
        except _Done:
            pass
        finally:
            for h in handles:
                h.remove()
        return {name: out[name] for name in paths}


def normalized_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance divided by the target's mean square (scale-free across layers)."""
    return (pred - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-8)
