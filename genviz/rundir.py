"""A run directory: writable, not another run's, locked while in use.

``claim_output(out_dir)`` makes ``out_dir`` a visualize run's own before any work (``visualize.py``
holds it for the whole run); ``check_writable`` is its first step.  ``CheckOutDir`` is the
Hydra callback of atlas and audit: an unwritable run directory is one error, before Hydra makes it;
``ClaimRunDir`` is visualize's: also a run or sweep directory holding another run's results is
refused before Hydra rewrites its ``.hydra/`` (which would relabel the old results).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from .atomic import unwritable_reason
from .options import check_writable_dir

try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra < 1.1
    _HydraCallback = object


class OutputError(ValueError):
    """The output directory cannot take this run's results (unwritable, or another run's)."""


LOCK_NAME = ".genviz-visualize.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def check_writable(out_dir: str | Path, key: str = "out_dir") -> Path:
    """Create ``out_dir`` and prove a file can be written there, before any work."""
    return check_writable_dir(out_dir, key, hint=" (hydra.run.dir=... or out_dir=...)", error=OutputError)


def _create_lock(lock: Path, content: str) -> bool:
    """Create ``lock`` holding ``content``, atomically (no reader sees it empty); False if it exists."""
    fd, tmp = tempfile.mkstemp(prefix=".genviz-lock.", dir=lock.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
        try:
            os.link(tmp, lock)  # fails if the lock exists
            return True
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links
            try:
                fd2 = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd2, "w") as f:
                f.write(content)
            return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _taken(key: str, out, results) -> str:
    return (
        f"{key}={out} already holds another run's results ({results}); choose another "
        "hydra.run.dir or out_dir, or pass overwrite=true to replace them"
    )


@contextlib.contextmanager
def claim_output(out_dir: str | Path, overwrite: bool = False, key: str = "out_dir"):
    """Make ``out_dir`` this run's own before any work: writable, not holding another run's
    results.json (unless ``overwrite``), and not being written by another live visualize run
    (a lock file, removed on exit; a stale one, of a process gone, is taken over)."""
    out = check_writable(out_dir, key)
    results = out / "results.json"
    if results.exists() and not overwrite:
        raise OutputError(_taken(key, out, results))
    lock = out / LOCK_NAME
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(3):
        if _create_lock(lock, me):
            break
        try:
            pid_s, _, host = lock.read_text().strip().partition(" ")
            pid = int(pid_s)
        except FileNotFoundError:
            continue  # released meanwhile: try again
        except (OSError, ValueError):
            raise OutputError(
                f"{key}={out}: unreadable lock file {lock}; delete it if no visualize run uses {out}"
            ) from None
        if host == socket.gethostname() and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()  # stale: its run is gone
            continue
        raise OutputError(
            f"{key}={out} is in use by another visualize run (process {pid} on {host}); choose "
            f"another hydra.run.dir or out_dir (or delete {lock} if no run uses it)"
        )
    else:
        raise OutputError(f"{key}={out}: cannot take the lock {lock}; delete it if no run uses {out}")
    try:
        yield out
    finally:
        with contextlib.suppress(OSError):
            if lock.read_text().strip() == me:
                lock.unlink()


# ---------------------------------------------------------------------------------------------
# the Hydra callback that checks the run directory before Hydra creates it


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


class CheckOutDir(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` in conf/atlas.yaml, conf/audit.yaml): before Hydra
    creates the run directory (inside ``out_dir``), check that it can; else ``error: ...`` and
    exit code 2 rather than Hydra's traceback."""

    def _check(self, config, dir_key: str) -> None:
        try:
            run_dir, out_dir = self._resolve(config, dir_key)
        except Exception:  # whatever fails here fails again where Hydra reads it, with its message
            return
        if run_dir is None:
            return
        reason = unwritable_reason(run_dir)
        if reason is None:
            return
        key, value = dir_key, run_dir
        if out_dir is not None and _inside(str(run_dir), str(out_dir)):
            key, value = "out_dir", out_dir
        print(
            f"error: {key}={value}: cannot write there ({reason}); choose a writable directory",
            file=sys.stderr,
        )
        raise SystemExit(2)

    @staticmethod
    def _resolve(config, dir_key: str):
        """(run or sweep dir, out_dir), resolved as Hydra will: ``${hydra:...}`` needs the
        HydraConfig singleton, set here for the lookup and put back as it was."""
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.instance()
        prev_cfg, prev_ro = hc.cfg, config.hydra._get_node_flag("readonly")
        try:
            hc.set_config(config)
            return OmegaConf.select(config, dir_key), OmegaConf.select(config, "out_dir", default=None)
        finally:
            hc.cfg = prev_cfg
            OmegaConf.set_readonly(config.hydra, prev_ro)

    def on_run_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config, **kwargs) -> None:
        self._check(config, "hydra.sweep.dir")


class ClaimRunDir(CheckOutDir):
    """visualize's Hydra callback (conf/visualize.yaml): :class:`CheckOutDir`, and a run
    directory (``hydra.run.dir``) or a sweep directory (``hydra.sweep.dir``: its jobs') that
    already holds a results.json is refused unless ``overwrite=true``, before Hydra writes its
    ``.hydra/`` there: a refused run leaves the old run's record as it was."""

    def _refuse_taken(self, config, dir_key: str, pattern: str) -> None:
        if config.get("overwrite", False):
            return
        try:
            folder, _ = self._resolve(config, dir_key)
        except Exception:
            return
        taken = sorted(Path(folder).glob(pattern)) if folder is not None and Path(folder).is_dir() else []
        if taken:
            print(f"error: {_taken(dir_key, folder, taken[0])}", file=sys.stderr)
            raise SystemExit(2)

    def on_run_start(self, config, **kwargs) -> None:
        super().on_run_start(config, **kwargs)
        self._refuse_taken(config, "hydra.run.dir", "results.json")

    def on_multirun_start(self, config, **kwargs) -> None:
        super().on_multirun_start(config, **kwargs)
        self._refuse_taken(config, "hydra.sweep.dir", "*/results.json")
