"""Command-line helpers: user errors become one clear message and exit code 2, not a traceback
(set GENVIZ_DEBUG=1 to see the traceback); unique run directories."""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from .atomic import disk_error, unwritable_reason
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

# -- unique run directories ----------------------------------------------------------------------

CLAIMED_DIRS: list[Path] = []  # run directories this process chose through ${genviz.unique_dir:...}


def unique_dir(base: str) -> str:
    """``base`` if no such path exists, else ``base-1``, ``base-2``...: a fresh run directory.

    Used as ``hydra.run.dir: ${genviz.unique_dir:outputs/visualize/${now:...}}`` (microseconds
    in ``base``). It creates nothing: Hydra resolves the value more than once while composing
    (and in configs that override it, e.g. atlas and audit), so a resolver that made directories
    would leave empty ones behind. Two runs that still pick the same name in the same
    microsecond are kept apart by ``rundir.claim_output``'s lock (the second one is refused)."""
    root = Path(str(base))
    for k in range(100_000):
        path = root if k == 0 else root.with_name(f"{root.name}-{k}")
        if not path.exists():
            CLAIMED_DIRS.append(path.absolute())
            return str(path)
    raise UserError(f"no free run directory next to {root}")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("genviz.unique_dir"):
        OmegaConf.register_new_resolver("genviz.unique_dir", unique_dir, use_cache=True)


register_resolvers()


def check_run_dir_override(argv: list[str], default: str | None = None) -> None:
    """Before Hydra starts: a run directory (``hydra.run.dir=...`` on the command line, else
    ``default``) that cannot be written is one error, exit code 2, not Hydra's traceback."""
    if any(a in ("-m", "--multirun") or a.startswith("-") for a in argv):
        return  # multirun, --cfg, --help...: Hydra's own business
    given = [a.split("=", 1)[1] for a in argv if a.startswith(("hydra.run.dir=", "++hydra.run.dir="))]
    target = given[-1] if given else default
    if not target or "${" in target:
        return
    why = unwritable_reason(target)
    if why:
        key = "hydra.run.dir" if given else "the run directory"
        print(
            f"error: {key}={target}: cannot write there ({why}); choose a writable hydra.run.dir",
            file=sys.stderr,
        )
        raise SystemExit(2)


def remove_unused_run_dir(run_dir: str | Path | None) -> bool:
    """Remove ``run_dir`` if this process chose it (``CLAIMED_DIRS``) and it holds nothing but
    Hydra's own files (.hydra/, the job log): a run that failed before any work leaves no empty
    directory behind. Returns whether it was removed."""
    if run_dir is None:
        return False
    path = Path(run_dir).resolve()
    if path not in CLAIMED_DIRS or not path.is_dir():
        return False
    if any(p.name != ".hydra" and p.suffix != ".log" for p in path.iterdir()):
        return False
    if any(p.stat().st_size for p in path.glob("*.log")):  # the log says something: keep it
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


@contextmanager
def friendly_errors(cleanup_dir: str | Path | None = None):
    """User errors -> ``error: <message>`` on stderr and exit code 2. ``cleanup_dir``: a run
    directory to remove on such an error if it is still empty (see ``remove_unused_run_dir``)."""
    try:
        yield
    except USER_ERRORS as e:
        if os.environ.get("GENVIZ_DEBUG"):
            raise
        remove_unused_run_dir(cleanup_dir)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:  # a full disk: one line; any other OSError is a bug, with its traceback
        message = disk_error(e)
        if message is None or os.environ.get("GENVIZ_DEBUG"):
            raise
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
