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

import re

from . import objectives as O
from .classifiers import Classifier

KINDS = ("class", "channel", "neuron", "layer", "channels")


class TargetError(ValueError):
    pass


def _int(s: str, what: str, target: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise TargetError(f"target {target!r}: {what} must be an integer, got {s!r}") from None


def _channel_list(s: str, target: str) -> list[int]:
    out: list[int] = []
    for part in s.split(","):
        if re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", part):
            a, b = (int(v) for v in part.split("-"))
            out.extend(range(a, b + 1))
        else:
            out.append(_int(part.strip(), "channel", target))
    if not out:
        raise TargetError(f"target {target!r}: empty channel list")
    return out


def _parse_term(term: str, clf: Classifier, full: str) -> O.Objective:
    weight = 1.0
    m = re.fullmatch(r"\s*([-+]?\d*\.?\d+(?:e[-+]?\d+)?)\s*\*\s*(.+)", term)
    if m:
        weight, term = float(m.group(1)), m.group(2)
    kind, _, rest = term.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS or not rest:
        raise TargetError(
            f"cannot read target {full!r}: expected one of "
            + ", ".join(f"{k}:..." for k in KINDS)
            + " (e.g. class:mosque, channel:relu5_1:99, 0.7*class:crib+0.3*class:cradle)"
        )
    if kind == "class":
        obj = O.class_(clf.classes.resolve(rest), f"class:{rest}")
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
            obj = O.channel(layer, _int(parts[1], "channel", full))
        elif kind == "channels":
            if len(parts) != 2:
                raise TargetError(f"target {full!r}: write channels:LAYER:0,5,9 or channels:LAYER:0-15")
            obj = O.channels(layer, _channel_list(parts[1], full))
        else:
            if len(parts) not in (2, 4):
                raise TargetError(f"target {full!r}: write neuron:LAYER:C or neuron:LAYER:C:Y:X")
            pos = [_int(p, "position", full) for p in parts[2:]] or [None, None]
            obj = O.neuron(layer, _int(parts[1], "channel", full), *pos)
    return obj * weight if weight != 1.0 else obj


def parse_target(text: str, clf: Classifier) -> O.Objective:
    """``"0.7*class:crib+0.3*class:cradle"`` -> Objective (labelled with ``text``)."""
    text = str(text).strip()
    if not text:
        raise TargetError("empty target; try target=class:mosque")
    obj = sum((_parse_term(t, clf, text) for t in text.split("+") if t.strip()), O.Objective())
    obj.label = text
    return obj


def parse_targets(texts, clf: Classifier) -> list[O.Objective]:
    """One target string, a comma-free list, or a list of strings -> objectives."""
    if isinstance(texts, str):
        texts = [texts]
    return [parse_target(t, clf) for t in texts]
