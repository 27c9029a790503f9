"""A run directory: writable, not another run's, locked while in use.

``claim_output(out_dir)`` makes ``out_dir`` a visualize run's own before any work (``visualize.py``
holds it for the whole run); ``check_writable`` is its first step.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path

from .options import check_writable_dir


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


@contextlib.contextmanager
def claim_output(out_dir: str | Path, overwrite: bool = False, key: str = "out_dir"):
    """Make ``out_dir`` this run's own before any work: writable, not holding another run's
    results.json (unless ``overwrite``), and not being written by another live visualize run
    (a lock file, removed on exit; a stale one, of a process gone, is taken over)."""
    out = check_writable(out_dir, key)
    results = out / "results.json"
    if results.exists() and not overwrite:
        raise OutputError(
            f"{key}={out} already holds another run's results ({results}); choose another "
            "hydra.run.dir or out_dir, or pass overwrite=true to replace them"
        )
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
