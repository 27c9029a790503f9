"""The classifier wrapper every method talks to.

It owns its input normalization (it takes RGB in [0, 1]), stays in eval mode with frozen
weights, names its layers (VGG names such as ``relu5_1``/``fc6``, or any module path, dots or
underscores), replaces the softmax by a head (``relu`` as in the paper) and records the
activations of the layers an objective asks for.
"""

from __future__ import annotations

import difflib
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..classes import ClassNames


class LayerLookupError(ValueError):
    pass


@dataclass
class Activation:
    """A recorded layer: ``post`` its output, ``pre`` the input of its ReLU (or the output again)."""

    pre: torch.Tensor
    post: torch.Tensor


HEADS = {
    "relu": F.relu,
    "linear": lambda z: z,
    "softmax": lambda z: z.softmax(-1),
}


class Classifier(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        input_size: int = 224,
        classes: ClassNames | None = None,
        aliases: dict[str, str] | None = None,
        head: str = "relu",
        dropout: bool = False,
        name: str = "",
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {sorted(HEADS)}")
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_size = int(input_size)
        self.aliases = dict(aliases or {})
        self.head_name, self.dropout, self.name = head, bool(dropout), name
        self._modules_by_path = dict(model.named_modules())
        for m in model.modules():  # in-place ops would overwrite recorded activations
            if hasattr(m, "inplace"):
                m.inplace = False
        model.requires_grad_(False)
        self.num_classes = self._probe_num_classes()
        self.classes = classes or ClassNames.numbered(self.num_classes)
        if len(self.classes) != self.num_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.num_classes} outputs")
        self.eval()

    def _probe_num_classes(self) -> int:
        with torch.no_grad():
            return self.model(torch.zeros(1, 3, self.input_size, self.input_size)).shape[-1]

    # -- mode -------------------------------------------------------------------
    def train(self, mode: bool = True):
        """The classifier stays in eval mode; ``dropout=True`` (the authors' Keras
        quirk) re-enables only its dropout layers."""
        super().train(False)
        if self.dropout:
            for m in self.model.modules():
                if isinstance(m, nn.Dropout | nn.Dropout2d):
                    m.train(True)
        return self

    # -- layers -----------------------------------------------------------------
    def layer_names(self) -> list[str]:
        return ["logits", "head", *self.aliases, *[p for p in self._modules_by_path if p]]

    def resolve_layer(self, name: str) -> str:
        """Module path of a layer name (alias, module path with dots or underscores)."""
        if name in ("logits", "head"):
            return name
        if name in self.aliases:
            return self.aliases[name]
        if name in self._modules_by_path and name:
            return name
        flat = {p.replace(".", "_"): p for p in self._modules_by_path if p}
        if name.replace(".", "_") in flat:
            return flat[name.replace(".", "_")]
        names = list(dict.fromkeys([*self.aliases, *flat]))  # an alias may equal its module path
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        named = ", ".join(["logits", "head", *self.aliases]) if self.aliases else "logits, head"
        paths = [p for p in self._modules_by_path if p]
        shown = ", ".join(paths[:40]) + (" ..." if len(paths) > 40 else "")
        raise LayerLookupError(
            f"classifier {self.name!r} has no layer {name!r}.{hint}\n"
            f"Named layers: {named}\nModule paths: {shown}"
        )

    # -- forward ----------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def fit_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """RGB images in [0, 1] -> logits."""
        return self.model(self.normalize(x))

    def head(self, logits: torch.Tensor) -> torch.Tensor:
        return HEADS[self.head_name](logits)

    @contextmanager
    def recording(self, layers):
        """Within the block, every forward fills the yielded dict with
        ``{layer name: Activation}`` for ``layers`` (plus ``logits`` and ``head``)."""
        store: dict[str, Activation] = {}
        handles = []
        for name in dict.fromkeys(layers):
            path = self.resolve_layer(name)
            if path in ("logits", "head"):
                continue
            module = self._modules_by_path[path]

            def hook(mod, inp, out, name=name):
                pre = inp[0] if isinstance(mod, nn.ReLU | nn.ReLU6) and torch.is_tensor(inp[0]) else out
                store[name] = Activation(pre, out)

            handles.append(module.register_forward_hook(hook))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def run(self, x: torch.Tensor, store: dict | None = None) -> torch.Tensor:
        """Forward that also records logits/head into ``store``; returns the logits."""
        logits = self(x)
        if store is not None:
            store["logits"] = Activation(logits, logits)
            store["head"] = Activation(logits, self.head(logits))
        return logits
