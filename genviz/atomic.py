"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one;
and reads of regular files only (:func:`regular_file`: a FIFO or a device named like an image
or a results.json would block its reader forever).

Each helper writes a temporary file in the destination's own directory (so the final rename
never crosses a filesystem), flushes and fsyncs it, then ``os.replace``-s it onto the
destination. If anything fails the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "NotRegularFileError",
    "atomic_path",
    "disk_error",
    "open_atomic",
    "regular_file",
    "save_png_atomic",
    "unwritable_reason",
    "write_bytes_atomic",
    "write_text_atomic",
]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is fsynced and renamed onto
    ``path``, on an exception it is deleted. For writers that want a file name (PIL, torch.save):

        with atomic_path(out) as tmp:
            image.save(tmp, format="PNG")

    ``suffix`` (default: ``path``'s own suffix) keeps libraries that look at the extension happy.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=(path.suffix if suffix is None else suffix) + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    with contextlib.suppress(OSError):  # mkstemp makes 0600 files; give it a plain file's mode
        os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """``open(path, mode)`` that only replaces ``path`` once the block finishes without error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic: mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``."""
    with open_atomic(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return ``path``."""
    with open_atomic(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def save_png_atomic(image, path: str | os.PathLike, format: str | None = None) -> Path:
    """Save a PIL image at ``path`` atomically (PNG, or the format ``path``'s extension names,
    or ``format``); return ``path``."""
    from PIL import Image

    path = Path(path)
    fmt = format or Image.registered_extensions().get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path


def unwritable_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be created or written, judged without creating anything (None: it
    looks fine): its nearest existing ancestor must be a directory we may write in."""
    probe = Path(os.path.abspath(path))
    while not probe.exists():
        if probe.is_symlink():
            return f"{probe} is a broken symbolic link"
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"no permission to write in {probe}"
    return None


class NotRegularFileError(OSError):
    """A path to read that exists but is not a regular file (a FIFO, a device, a socket, a
    directory): opening it could block forever or read something else than a file."""


def regular_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a regular file (or a symbolic link to one), checked without opening
    it; else :class:`NotRegularFileError` naming it (``FileNotFoundError`` if it is missing).
    Every reader of a file genviz did not just write goes through this before ``open``."""
    path = Path(path)
    mode = os.stat(path).st_mode  # follows links; never blocks, unlike open() on a FIFO
    if not stat.S_ISREG(mode):
        kind = (
            "a directory" if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )  # fmt: skip
        raise NotRegularFileError(f"{path} is {kind}, not a regular file: not read")
    return path


# a write that failed for want of room or permission: the user's to fix, one line (not a traceback)
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


def disk_error(e: BaseException) -> str | None:
    """The one-line message of a full disk or read-only filesystem (None for anything else)."""
    if not isinstance(e, OSError) or e.errno not in DISK_ERRNOS:
        return None
    where = f" {e.filename}" if e.filename else ""
    return (
        f"cannot write{where}: {e.strerror or e}; the work finished before it is kept; free some space "
        "or choose another directory, and run again"
    )
