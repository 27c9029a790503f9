"""Command-line helpers: user errors become one clear message and exit code 2, not a traceback
(set GENVIZ_DEBUG=1 to see the traceback)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from omegaconf.errors import MissingMandatoryValue

from .classes import ClassLookupError
from .classifiers import LayerLookupError, WeightsUnavailableError


class UserError(Exception):
    """An error whose message tells the user what to do."""


USER_ERRORS = (
    UserError,
    ClassLookupError,
    LayerLookupError,
    WeightsUnavailableError,
    FileNotFoundError,
    MissingMandatoryValue,
    ValueError,
)


@contextmanager
def friendly_errors():
    try:
        yield
    except USER_ERRORS as e:
        if os.environ.get("GENVIZ_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
