"""Config values checked before any work: one error class, one integer check, the device, and
one check that an output directory can be written. Each error names the config key it is about."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch

from .atomic import unwritable_reason


class ConfigError(ValueError):
    """A config value that cannot work; the message names its key."""


FLOAT32_MAX = 3.4028234663852886e38  # the largest float32: a larger value is inf in a tensor


def int_value(
    key: str, value, minimum: int = 1, none_ok: bool = False, maximum: int | None = None
) -> int | None:
    """A config value that must be an integer of at least ``minimum`` (and at most ``maximum``;
    ``"3"`` and ``3.0`` count): one :class:`ConfigError` naming ``key``."""
    if value is None and none_ok:
        return None
    v = value
    if isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            pass
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{key}={value!r}: must be an integer")
    if v < minimum:
        raise ConfigError(f"{key}={value}: must be at least {minimum}")
    if maximum is not None and v > maximum:
        raise ConfigError(f"{key}={value}: must be at most {maximum}")
    return v


def float_value(key: str, value, minimum: float = 0.0, why: str = "", maximum: float = FLOAT32_MAX) -> float:
    """A config value that must be a finite number from ``minimum`` to ``maximum`` (default: the
    largest float32, as the value ends up in a float32 tensor): one :class:`ConfigError` naming
    ``key`` (``why``: appended to the message of a value below ``minimum``)."""
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}={value!r}: must be a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"{key}={value}: must be a finite number")
    if v < minimum:
        raise ConfigError(f"{key}={value}: must be {minimum:g} or more{why}")
    if v > maximum:
        raise ConfigError(f"{key}={value}: must be at most {maximum:g}")
    return v


def check_writable_dir(
    path: str | os.PathLike, key: str = "out_dir", subdirs=(), hint: str = "", error: type = ConfigError
) -> Path:
    """Create ``path`` (and ``subdirs`` in it) and prove a file can be written in each, before
    any work: else one ``error`` naming ``key`` (``hint``: where to choose another)."""
    out = Path(path)
    reason = unwritable_reason(out)
    if reason is None:
        try:
            for d in (out, *(out / s for s in subdirs)):
                d.mkdir(parents=True, exist_ok=True)
                fd, probe = tempfile.mkstemp(prefix=".genviz-write-test.", dir=d)
                os.close(fd)
                os.unlink(probe)
        except OSError as e:
            reason = f"{e.strerror or e}: {e.filename}" if e.filename else str(e.strerror or e)
    if reason is not None:
        raise error(f"{key}={path}: cannot write there ({reason}); choose a writable directory{hint}")
    return out


def resolve_device(name: str = "auto") -> torch.device:
    name = str(name).strip()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device={name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={name}: no CUDA GPU is available (torch.cuda.is_available() is False); "
                "use device=cpu or device=auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name}: MPS is not available here; use device=cpu or device=auto")
    return dev
