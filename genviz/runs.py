"""A run's results: the per-target record, its status, and ``results.json``.

``TargetResult`` is what visualize computes for one target and writes as one row of
``results.json``; atlas writes the same rows (plus its own ``key`` and ``label``) and
evaluate, sweep and the run pages read them.  ``write_results`` / ``read_results`` are the
only writer and reader of that file.  No torch here: ``python -m genviz.sweep`` reads runs
without it.

``results.json`` is ``{"results": [row, ...], "config": {...}}``; a row holds, in this order:

==========================  =================================================================
``target``                  the target string, e.g. ``class:goldfish``
``activation``              the target's activation on the final image
``classes``/``class_names`` the classes of a class target (empty for a channel or layer)
``prob`` / ``probs``        softmax probability of the target (sum over its classes) / each
``rank`` / ``ranks``        rank of the target (its worst class) / of each class, 1 = first
``top5``                    ``[index, name, prob]`` of the five most probable classes
``minimizing``              only when true: the target's weights are all negative
``optimized_activation``    the activation at the last optimization step
``dead_start``              the target was inactive at the start (revived)
``start``                   only when known: what the optimization started from, e.g. ``a photo of
                            Border terrier (n02093754)`` (a start from the code prior's bank)
``status``                  ``ok``, ``dead`` or ``nan`` (:data:`STATUSES`), of ``activation``: the image delivered
``steps`` / ``seconds``     steps run; seconds per image
``seed`` / ``method``       the run's seed and method name
``history``                 the optimized activation per step (visualize only)
``key``                     the atlas's file stem (atlas only)
``label``                   the target as people read it (``goldfish (class:1)``), the atlas's caption
``image`` / ``gif``         paths relative to the run directory (``gif`` only with frames)
``transparency``            MACO only: path of the image with its transparency map as alpha
==========================  =================================================================

A row of an older file may lack any of these and may hold others: it is read as it is and
written back with the same keys in the same order.  Every row read back (``read_results``,
``read_entry``) is validated (:func:`check_row`): a field of the wrong type or range (a class
``-1``, ``1.7`` or ``[[1, 2]]``, a rank ``"<script>"``, an image path outside the run) is one
:class:`RunFileError` naming the file and the field.  A non-finite number is written as
``null`` (bare ``NaN`` is not JSON), its row with status ``nan``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import regular_file, write_text_atomic

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# status

STATUS_OK = "ok"  # the target's activation is positive and finite (or, minimizing, finite)
STATUS_DEAD = "dead"  # the image does not activate its target (activation <= 0): not a result
STATUS_NAN = "nan"  # the activation is not finite (nan/inf: the optimization diverged): not a result
STATUSES = (STATUS_OK, STATUS_DEAD, STATUS_NAN)
NOT_OK = (STATUS_DEAD, STATUS_NAN)

FINITE_FIELDS = ("activation", "optimized_activation", "prob")


def status_of(activation: float, dead: bool = False, nonfinite: bool = False) -> str:
    """``nan`` for a non-finite activation (whatever else holds), ``dead``, else ``ok``."""
    if nonfinite or not math.isfinite(float(activation)):
        return STATUS_NAN
    return STATUS_DEAD if dead else STATUS_OK


def finite_number(value) -> bool:
    """True for a finite number (or a string of one); False for None, a bool, NaN, inf, text."""
    if value is None or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _finite_or_absent(value) -> bool:
    """None (no such number, e.g. the prob of a channel target) and bools pass; anything else
    must be a finite number."""
    return value is None or isinstance(value, bool) or finite_number(value)


def result_status(r: Mapping | TargetResult) -> str:
    """The status of one result row: ``nan`` when any of its numbers (activation, optimized
    activation, prob, probs) is not finite, whatever status it records (rows written before the
    ``nan`` status existed said ``ok``); else its recorded status (``ok`` when it has none)."""
    if isinstance(r, TargetResult):
        r = r.to_dict()
    numbers = [r.get(k) for k in FINITE_FIELDS]
    probs = r.get("probs")
    if isinstance(probs, list):
        numbers += probs
    if not all(_finite_or_absent(v) for v in numbers):
        return STATUS_NAN
    return r.get("status", STATUS_OK)


def result_ok(r: Mapping | TargetResult) -> bool:
    """True for a row whose image is a result: status ok and every number finite."""
    return result_status(r) == STATUS_OK


# ---------------------------------------------------------------------------------------------
# file names


def slug(text, max_len: int | None = None) -> str:
    """``text`` as a file-name part: runs of other characters than ASCII letters and digits
    become ``_``, none at either end; cut to ``max_len`` characters when given."""
    s = re.sub(r"[^A-Za-z0-9]+", "_", str(text)).strip("_")
    return s if max_len is None else s[:max_len]


def result_label(r: Mapping | TargetResult) -> str:
    """What grids and pages call a row: its ``label`` (class targets by their class names, see
    :func:`genviz.targets.target_label`), else its target as typed (a row of an older run)."""
    if isinstance(r, TargetResult):
        r = r.to_dict()
    return str(r.get("label") or r.get("target") or "")


def result_name(k: int, target: str) -> str:
    """The file stem of the k-th target of a visualize run (``003_class_goldfish``): its PNG,
    frames and GIF, and its key in the loggers."""
    return f"{k:03d}_{slug(target, 60)}"


# ---------------------------------------------------------------------------------------------
# the record

MEMORY_ONLY = ("tensor", "frames", "transparency_map")  # in generate()'s results, never in results.json
_OPTIONAL = {
    "start": None,
    "minimizing": False,
    "history": None,
    "key": None,
    "label": None,
    "image": None,
    "gif": None,
}


@dataclass
class TargetResult:
    """One target's result (the module docstring lists the keys).  ``tensor`` (the image,
    [3, H, W] in [0, 1]) and ``frames`` (snapshots) are kept in memory only; ``extra`` holds the
    keys of a row this version does not know."""

    target: str | None = None
    activation: float | None = None
    classes: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    prob: float | None = None
    probs: list[float | None] = field(default_factory=list)
    rank: int | None = None
    ranks: list[int | None] = field(default_factory=list)
    top5: list[list] = field(default_factory=list)
    minimizing: bool = False
    optimized_activation: float | None = None
    dead_start: bool | None = None
    start: str | None = None
    status: str = STATUS_OK
    steps: int | None = None
    seconds: float | None = None
    seed: int | None = None
    method: str | None = None
    tensor: Any = None
    frames: list = field(default_factory=list)
    history: list[float] | None = None
    key: str | None = None
    label: str | None = None
    image: str | None = None
    gif: str | None = None
    extra: dict = field(default_factory=dict)
    # for a row read from a file: its keys, in their order (written back so); None for a fresh
    # result
    keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, row: Mapping) -> TargetResult:
        """A row as read (values as they are: an old file's numbers are not coerced)."""
        names = _field_names()
        known = {k: v for k, v in row.items() if k in names}
        extra = {k: v for k, v in row.items() if k not in names}
        return cls(**known, extra=extra, keys=tuple(row))

    def to_dict(self, memory: bool = False, drop: Iterable[str] = ()) -> dict:
        """The row: for a fresh result every key in the order above (``minimizing``,
        ``history``, ``key``, ``label``, ``image``, ``gif`` only when set), then ``extra``; for
        a row read from a file the keys it had, in their order, then those set since.
        ``memory``: with ``tensor`` and ``frames``; ``drop``: without these keys."""
        skip = set(drop) | (set() if memory else set(MEMORY_ONLY))
        if self.keys is not None:
            keys = self.keys
        else:  # a fresh result has the optional keys only when they are set
            keys = [n for n in _field_names() if not (n in _OPTIONAL and getattr(self, n) is _OPTIONAL[n])]
            keys += list(self.extra)
        names = set(_field_names())
        return {k: getattr(self, k) if k in names else self.extra[k] for k in keys if k not in skip}

    def replace(self, **changes) -> TargetResult:
        """A copy with ``changes`` (set fields with this, not by assignment: a row read from a
        file gains the keys set here)."""
        keys = self.keys
        if keys is not None:
            keys = keys + tuple(k for k in _field_names() if k in changes and k not in keys)
        return dataclasses.replace(self, keys=keys, **changes)

    def has(self, name: str) -> bool:
        """True when the row has the key ``name`` (a row read from a file may lack any)."""
        return name in self.to_dict(memory=True)

    def without(self, *names: str) -> TargetResult:
        """A copy without these keys."""
        return TargetResult.from_dict(self.to_dict(memory=True, drop=names))


def _field_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(TargetResult) if f.name not in ("extra", "keys"))


def as_record(r: Mapping | TargetResult) -> TargetResult:
    return r if isinstance(r, TargetResult) else TargetResult.from_dict(r)


# ---------------------------------------------------------------------------------------------
# results.json


class RunFileError(ValueError):
    """A run's results.json that cannot be read as one (the message names the file)."""


# the type of each known field of a row read back: (check, what it must be); None always passes
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:  # finite or not: a non-finite number makes the row's status nan
    return (isinstance(v, int | float) and not isinstance(v, bool)) or v is None


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _relative_path(v) -> bool:
    """A path inside the run directory: relative, without ``..`` (a hostile row cannot make a
    tool read or link another file)."""
    if not isinstance(v, str) or not v or "\x00" in v:
        return False
    parts = Path(v).parts
    return not Path(v).is_absolute() and ".." not in parts and not v.startswith(("/", "\\"))


def _top5(v) -> bool:
    return _list_of(
        lambda t: isinstance(t, list) and len(t) == 3 and _is_int(t[0]) and t[0] >= 0
        and isinstance(t[1], str) and _is_number(t[2]) and t[2] is not None
    )(v)  # fmt: skip


_CLASS = lambda v: _is_int(v) and v >= 0
_RANK = lambda v: _is_int(v) and v >= 1
_TEXT = lambda v: isinstance(v, str)
_OPTIONAL_TEXT = lambda v: v is None or isinstance(v, str)
ROW_FIELDS: dict[str, tuple] = {
    "target": (_TEXT, "a target string"),
    "activation": (_is_number, "a number or null"),
    "classes": (_list_of(_CLASS), "a list of class indices (integers >= 0)"),
    "class_names": (_list_of(_TEXT), "a list of class names (strings)"),
    "prob": (_is_number, "a number or null"),
    "probs": (_list_of(_is_number), "a list of numbers or nulls"),
    "rank": (lambda v: v is None or _RANK(v), "an integer >= 1 or null"),
    "ranks": (_list_of(lambda v: v is None or _RANK(v)), "a list of integers >= 1 or nulls"),
    "top5": (_top5, "a list of [class index, name, probability] triples"),
    "minimizing": (lambda v: isinstance(v, bool), "true or false"),
    "optimized_activation": (_is_number, "a number or null"),
    "dead_start": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "start": (_OPTIONAL_TEXT, "a string or null"),
    "status": (lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}"),
    "steps": (lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0 or null"),
    "seconds": (_is_number, "a number or null"),
    "seed": (lambda v: v is None or _is_int(v), "an integer or null"),
    "method": (_OPTIONAL_TEXT, "a string or null"),
    "history": (lambda v: v is None or _list_of(_is_number)(v), "a list of numbers or null"),
    "key": (_OPTIONAL_TEXT, "a string or null"),
    "label": (_OPTIONAL_TEXT, "a string or null"),
    "image": (lambda v: v is None or _relative_path(v), "a relative path inside the run directory"),
    "gif": (lambda v: v is None or _relative_path(v), "a relative path inside the run directory"),
    "transparency": (lambda v: v is None or _relative_path(v), "a relative path inside the run directory"),
}


def _shown(value) -> str:
    text = json.dumps(value, allow_nan=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_row(row, where: str) -> TargetResult:
    """One row read back -> its :class:`TargetResult`; a row that is not an object, or a known
    field of the wrong type or range, is a :class:`RunFileError` naming ``where`` (the file and
    the row) and the field.  Unknown keys pass (an older or newer file's)."""
    if not isinstance(row, dict):
        raise RunFileError(f"{where} is a JSON {type(row).__name__}, not an object")
    for name, value in row.items():
        check = ROW_FIELDS.get(name)
        if check is not None and not check[0](value):
            raise RunFileError(f"{where}.{name} = {_shown(value)}: must be {check[1]}")
    return TargetResult.from_dict(row)


def check_class_range(path, results: Iterable[TargetResult], n: int, who: str = "the classifier") -> None:
    """Every row's classes are indices of ``n`` classes: else a :class:`RunFileError` naming
    the file, the row and the field (``check_row`` checks they are integers >= 0)."""
    for i, r in enumerate(results):
        bad = [c for c in r.classes if c >= n]
        if bad:
            raise RunFileError(
                f"{path}: results[{i}].classes = {_shown(r.classes)}: class {bad[0]} is out of range "
                f"0..{n - 1} ({who} has {n} classes)"
            )


def _json_value(v):
    """``v`` for JSON: non-finite floats as null, containers recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return v


def _row_json(r: Mapping | TargetResult) -> dict:
    """A row as written: a row with a non-finite number has status ``nan``, and the number is
    ``null``."""
    row = as_record(r).to_dict()
    if result_status(row) == STATUS_NAN:
        row["status"] = STATUS_NAN
    return _json_value(row)


def _dumps(payload) -> str:
    return json.dumps(_json_value(payload), indent=1, allow_nan=False)


def write_results(
    path: str | Path,
    results: Iterable[Mapping | TargetResult],
    config: dict | None = None,
    config_first: bool = False,
) -> Path:
    """Write ``{"results": [...], "config": config}`` atomically (a reader sees the previous
    file or the whole new one); no ``config`` key when it is None; ``config_first``: the config
    key before the results (the atlas's layout).  Strict JSON: a non-finite number is null."""
    rows = [_row_json(r) for r in results]
    payload: dict = {"results": rows}
    if config is not None:
        payload = {"config": config, "results": rows} if config_first else {**payload, "config": config}
    path = Path(path)
    write_text_atomic(path, _dumps(payload))
    return path


def _read_json(path: Path, what: str):
    """The JSON in ``path`` (a regular file; bare NaN/Infinity of older files accepted)."""
    try:
        return json.loads(regular_file(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunFileError(f"{path} is not {what} (not text)") from None
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path} is not valid JSON (truncated, or still being written?): {e}") from None
    except OSError as e:
        raise RunFileError(f"{path} cannot be read ({e.strerror or e})") from None


def read_results(path: str | Path) -> tuple[dict, list[TargetResult]]:
    """(config, results) of a results.json; a file that is not one (unreadable, not a regular
    file, not text, truncated, not JSON, a list, a row with a field of the wrong type...) is a
    :class:`RunFileError` naming it (and the field)."""
    path = Path(path)
    data = _read_json(path, "a results.json")
    expected = 'a visualize results.json is an object with a "results" list'
    if not isinstance(data, dict):
        raise RunFileError(f"{path} holds a JSON {type(data).__name__}; {expected}")
    results = data.get("results")
    if not isinstance(results, list):
        found = "no" if results is None else f"a {type(results).__name__} as"
        raise RunFileError(f'{path} has {found} "results"; {expected}')
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise RunFileError(f'{path}: "config" is a {type(config).__name__}, not an object')
    return config, [check_row(r, f"{path}: results[{i}]") for i, r in enumerate(results)]


def read_entry(path: str | Path) -> TargetResult | None:
    """One row stored alone (an atlas entry), or None if it is missing, unreadable or invalid
    (a warning names the file and the field: the atlas renders that target again)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return check_row(_read_json(path, "an atlas entry"), str(path))
    except RunFileError as e:
        log.warning("ignoring %s", e)
        return None


def write_entry(path: str | Path, result: Mapping | TargetResult) -> Path:
    """One row stored alone, atomically (strict JSON, as :func:`write_results`)."""
    path = Path(path)
    write_text_atomic(path, _dumps(_row_json(result)))
    return path
