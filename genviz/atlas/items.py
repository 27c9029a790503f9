"""What the atlas renders: its targets (``Item``), from ``classes=``, ``layer=``/``channels=`` or
``pairs=``, each checked against the classifier, and the contiguous shard of one job."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, ListConfig

from ..classes import ClassLookupError, ClassNames
from ..classifiers import Classifier
from ..options import ConfigError
from ..references import model_device
from ..runs import slug


@dataclass
class Item:
    key: str  # file stem: images/<key>.png, entries/<key>.json
    target: str  # the target string given to the engine
    label: str  # caption on the sheets


def parse_range(spec, n: int, resolve=None) -> list[int]:
    """``all``/None -> 0..n-1; ``"0:100"`` -> 0..99; ``"7"`` or 7 -> [7]; a list of
    indices or names (``resolve`` turns a name into an index)."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("all", "")):
        return list(range(n))
    if isinstance(spec, int):
        return [spec]
    if isinstance(spec, ListConfig | list | tuple):
        return [int(s) if isinstance(s, int) else (resolve(s) if resolve else int(s)) for s in spec]
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(spec))
    if m:
        a = int(m.group(1)) if m.group(1) else 0
        b = int(m.group(2)) if m.group(2) else n
        if not 0 <= a < b or b > n:
            raise ValueError(f"range {spec!r} is empty or out of range: there are {n} (0:{n})")
        return list(range(a, b))
    return [resolve(str(spec)) if resolve else int(spec)]


def _show(spec) -> str:
    """A config value as the user typed it: ``10``, ``5:20``, ``[3,10]``."""
    if isinstance(spec, ListConfig | list | tuple):
        return "[" + ",".join(_show(s) for s in spec) + "]"
    return str(spec)


def class_index(value, names: ClassNames, key: str, spec=None) -> int:
    """One class (index, WordNet id or name) -> its index; an index out of range or an unknown
    name is one error naming ``key`` and the valid range."""
    shown = _show(value if spec is None else spec)
    n = len(names)
    if (
        isinstance(value, int | str)
        and not isinstance(value, bool)
        and re.fullmatch(r"\s*-?\d+\s*", str(value))
    ):
        i = int(value)
        if not 0 <= i < n:
            named = "a WordNet id or a class name" if names.wnids else "or a class name"
            raise ConfigError(
                f"{key}={shown}: class index {i} is out of range: this classifier has {n} classes "
                f"(valid: 0..{n - 1}, {named})"
            )
        return i
    try:
        return names.resolve(str(value))
    except ClassLookupError as e:
        raise ClassLookupError(f"{key}={shown}: {e}") from None


def class_indices(spec, names: ClassNames, key: str = "classes") -> list[int]:
    """The classes of ``classes=``: ``all`` (or empty/null), a range ``a:b``, one class (index,
    WordNet id or name) or a non-empty list of them; each checked against the classifier's
    ``len(names)`` classes, an error naming ``key`` and the valid range otherwise."""
    n = len(names)
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("all", "")):
        return list(range(n))
    if isinstance(spec, ListConfig | list | tuple):
        if not len(spec):
            raise ConfigError(
                f"{key}=[] names no class; use {key}=all, a range such as {key}=0:{n} or a list "
                f"such as {key}=[0,1] (this classifier has {n} classes: 0..{n - 1})"
            )
        return [class_index(s, names, key, spec) for s in spec]
    m = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", str(spec))
    if m:
        a = int(m.group(1)) if m.group(1) else 0
        b = int(m.group(2)) if m.group(2) else n
        if not 0 <= a < b <= n:
            raise ConfigError(
                f"{key}={_show(spec)}: the range is empty or out of range: this classifier has {n} "
                f"classes (valid: a range within 0:{n})"
            )
        return list(range(a, b))
    return [class_index(spec, names, key)]


def class_item(clf: Classifier, c: int) -> Item:
    return Item(f"class_{c:04d}", f"class:{c}", f"{c} {clf.classes.name(c)}")


def layer_channels(clf: Classifier, layer: str) -> int:
    """Number of channels of a layer (one probe forward)."""
    x = torch.zeros(1, 3, clf.input_size, clf.input_size, device=model_device(clf))
    with torch.no_grad(), clf.recording([layer]) as store:
        clf.run(x, store)
    return int(store[layer].post.shape[1])


def atlas_items(cfg: DictConfig, clf: Classifier) -> list[Item]:
    """Every target of the atlas, in order (before sharding)."""
    if cfg.sheet == "classes":
        return [class_item(clf, c) for c in class_indices(cfg.classes, clf.classes, "classes")]
    if cfg.sheet == "layer":
        n = layer_channels(clf, cfg.layer)
        out_of_range = ValueError(
            f"layer {cfg.layer} has {n} channels; channels={_show(cfg.channels)} is out of range "
            f"(valid: a range within 0:{n})"
        )
        try:
            chans = parse_range(cfg.channels, n)
        except ValueError:
            raise out_of_range from None
        if not chans:
            raise ConfigError(
                f"channels={_show(cfg.channels)} names no channel (layer {cfg.layer} has {n}: 0:{n})"
            )
        if max(chans) >= n or min(chans) < 0:
            raise out_of_range
        return [
            Item(f"channel_{slug(cfg.layer)}_{c:04d}", f"channel:{cfg.layer}:{c}", f"{cfg.layer}:{c}")
            for c in chans
        ]
    if cfg.sheet == "compound":
        items: dict[str, Item] = {}
        if not cfg.pairs:
            raise ConfigError("pairs names no pair of classes; e.g. pairs=[[ostrich,bullfrog]]")
        for pair in cfg.pairs:
            if not isinstance(pair, ListConfig | list | tuple) or len(pair) != 2:
                raise ConfigError(f"pairs: {_show(pair)} is not a pair of classes; e.g. pairs=[[1,2],[3,4]]")
            a, b = (class_index(p, clf.classes, "pairs", pair) for p in pair)
            items.setdefault(f"class_{a:04d}", class_item(clf, a))
            key = f"pair_{a:04d}_{b:04d}"
            items[key] = Item(key, f"class:{a}+class:{b}", f"{clf.classes.name(a)} + {clf.classes.name(b)}")
            items.setdefault(f"class_{b:04d}", class_item(clf, b))
        return list(items.values())
    raise ValueError(f"unknown sheet {cfg.sheet!r}: classes | layer | compound")


def shard_items(items: list, shard: int, num_shards: int) -> list:
    """The shard-th of num_shards contiguous chunks (contiguous so a contact sheet is
    mostly the work of one job)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard={shard} must be in 0..num_shards-1={num_shards - 1}")
    n = len(items)
    return items[n * shard // num_shards : n * (shard + 1) // num_shards]
