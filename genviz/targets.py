"""Parse target strings into objectives.

class:mosque | class:668 | class:n03788195       a class (ReLU head unit)
channel:relu5_1:99                                a channel (filter): its spatial mean
neuron:relu5_1:99 | neuron:relu5_1:99:7:7 | neuron:fc7:12
                                                  one unit (centre by default)
layer:relu4_3                                     a whole layer: sum over its filters
channels:conv2_2:0,5,9 | channels:relu5_1:0-15    a group of channels
class:ostrich+class:bullfrog                      compound (paper Fig. 9)
0.7*class:crib+0.3*class:cradle                   weighted compound
"""

from __future__ import annotations

import math
import re

from . import objectives as O
from .classes import ClassNames
from .classifiers import Classifier

KINDS = ("class", "channel", "neuron", "layer", "channels")


class TargetError(ValueError):
    pass


def _int(s: str, what: str, target: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise TargetError(f"target {target!r}: {what} must be an integer, got {s!r}") from None
    if v < 0:
        raise TargetError(f"target {target!r}: {what} must be 0 or more, got {v}")
    return v


MAX_CHANNELS = 1 << 16  # more channels than any layer has: a range past it is refused before expanding


def _channel(s: str, target: str) -> int:
    c = _int(s, "channel", target)
    if c >= MAX_CHANNELS:
        raise TargetError(f"target {target!r}: channel {c} is out of range (at most {MAX_CHANNELS})")
    return c


def _channel_list(s: str, target: str) -> list[int]:
    """``0,5,9`` / ``0-15`` -> channel indices; a range is checked before it is expanded (a typo
    such as ``0-99999999999`` is one error, not a list of a hundred billion)."""
    out: list[int] = []
    for part in s.split(","):
        if re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", part):
            a, b = (int(v) for v in part.split("-"))
            if b < a:
                raise TargetError(f"target {target!r}: channel range {a}-{b} is empty (write low-high)")
            if b >= MAX_CHANNELS or len(out) + b - a >= MAX_CHANNELS:
                raise TargetError(
                    f"target {target!r}: channel range {a}-{b} is out of range: at most {MAX_CHANNELS} "
                    "channels, indices below that (the layer's own count is checked against the classifier)"
                )
            out.extend(range(a, b + 1))
        else:
            out.append(_channel(part.strip(), target))
    if not out:
        raise TargetError(f"target {target!r}: empty channel list")
    return out


# a term's numeric weight: 0.7, -1, .5, 2., 1e3, 1e+3, 1.5E-2
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WEIGHTED = re.compile(rf"\s*({_NUMBER})\s*\*\s*(.+)", re.S)
_EXPONENT_OPEN = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)[eE]")  # a weight cut at its exponent's sign


def split_terms(text: str) -> list[str]:
    """``"0.7*class:crib+0.3*class:cradle"`` -> its terms. A ``+`` inside a weight's exponent
    (``1e+3*class:1``) is part of the number, not a separator."""
    terms, cur = [], ""
    for ch in text:
        if ch == "+" and cur.strip() and not _EXPONENT_OPEN.fullmatch(cur):
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t for t in terms if t.strip()]


def _weight(term: str, full: str) -> tuple[float, str]:
    m = _WEIGHTED.fullmatch(term)
    if not m:
        return 1.0, term
    weight = float(m.group(1))
    if not math.isfinite(weight):
        raise TargetError(f"target {full!r}: weight {m.group(1)} is not a finite number")
    if weight == 0:
        raise TargetError(
            f"target {full!r}: weight 0 in {term.strip()!r} leaves nothing to optimize; "
            "drop the term or give it a non-zero weight (a negative weight minimizes)"
        )
    return weight, m.group(2)


def _class_index(rest: str, clf: Classifier, full: str) -> int:
    key = rest.strip()
    if re.fullmatch(r"[-+]?\d+", key):
        i, n = int(key), len(clf.classes)
        if not 0 <= i < n:
            raise TargetError(
                f"target {full!r}: class index {i} is out of range 0..{n - 1} (the classifier has {n} classes)"
            )
        return i
    return clf.classes.resolve(rest)


def _parse_term(term: str, clf: Classifier, full: str) -> O.Objective:
    weight, term = _weight(term, full)
    kind, _, rest = term.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS or not rest:
        raise TargetError(
            f"cannot read target {full!r}: expected one of "
            + ", ".join(f"{k}:..." for k in KINDS)
            + " (e.g. class:mosque, channel:relu5_1:99, 0.7*class:crib+0.3*class:cradle)"
        )
    if kind == "class":
        obj = O.class_(_class_index(rest, clf, full), f"class:{rest}")
    elif kind == "layer":
        clf.resolve_layer(rest)
        obj = O.layer(rest)
    else:
        parts = rest.split(":")
        layer = parts[0]
        clf.resolve_layer(layer)
        if kind == "channel":
            if len(parts) != 2:
                raise TargetError(f"target {full!r}: write channel:LAYER:INDEX")
            obj = O.channel(layer, _channel(parts[1], full))
        elif kind == "channels":
            if len(parts) != 2:
                raise TargetError(f"target {full!r}: write channels:LAYER:0,5,9 or channels:LAYER:0-15")
            obj = O.channels(layer, _channel_list(parts[1], full))
        else:
            if len(parts) not in (2, 4):
                raise TargetError(f"target {full!r}: write neuron:LAYER:C or neuron:LAYER:C:Y:X")
            pos = [_int(p, "position", full) for p in parts[2:]] or [None, None]
            obj = O.neuron(layer, _channel(parts[1], full), *pos)
    return obj * weight if weight != 1.0 else obj


def _plain(text: str) -> str:
    return re.sub(r"[\s_]+", "", text.lower().replace("class:", ""))


def target_label(text: str, classes: ClassNames) -> str:
    """A target as people read it: each class term by its class name, the target as typed in
    brackets when it did not already say so (``class:1`` -> ``goldfish (class:1)``,
    ``class:lemon+class:ladybug`` -> ``lemon + ladybug``, ``0.7*class:crib+0.3*class:cradle`` ->
    ``0.7*crib + 0.3*cradle``); a target without a class term as typed."""
    text = str(text).strip()
    parts, named = [], False
    for term in split_terms(text):
        weight, rest = _weight(term, text)
        kind, _, key = rest.strip().partition(":")
        if kind.strip().lower() != "class":
            parts.append(term.strip())
            continue
        named = True
        name = classes.name(_class_index(key, _NamesOnly(classes), text))
        parts.append(name if weight == 1.0 else f"{weight:g}*{name}")
    label = " + ".join(parts)
    if not named or _plain(label) == _plain(text):
        return label if named else text
    return f"{label} ({text})"


def parse_target(text: str, clf: Classifier) -> O.Objective:
    """``"0.7*class:crib+0.3*class:cradle"`` -> Objective (labelled with ``text``)."""
    text = str(text).strip()
    if not text:
        raise TargetError("empty target; try target=class:mosque")
    terms = split_terms(text)
    if not terms:
        raise TargetError(f"target {text!r} names nothing to optimize; try target=class:mosque")
    obj = sum((_parse_term(t, clf, text) for t in terms), O.Objective())
    obj.label = text
    return obj


def parse_targets(texts, clf: Classifier) -> list[O.Objective]:
    """One target string, a comma-free list, or a list of strings -> objectives."""
    if isinstance(texts, str):
        texts = [texts]
    if not len(texts):
        raise TargetError("target=[] names no target; try target=class:mosque or target=[class:1,class:2]")
    return [parse_target(t, clf) for t in texts]


class _AnyClass:
    def resolve(self, key) -> int:
        return 0

    def __len__(self) -> int:
        return 1 << 62


class _NamesOnly:
    """Stands in for a classifier whose weights are not loaded yet: its class names (or none
    known: any class passes) and any layer name."""

    def __init__(self, classes: ClassNames | None):
        self.classes = classes if classes is not None else _AnyClass()

    def resolve_layer(self, name: str) -> str:
        return name


def check_targets(texts, classes: ClassNames | None = None) -> None:
    """Check target strings before a classifier is built: their syntax, weights and indices,
    and with ``classes`` their class names and index ranges (layers are checked later, against
    the built classifier)."""
    parse_targets(texts, _NamesOnly(classes))
