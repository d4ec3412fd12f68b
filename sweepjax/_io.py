"""Atomic file writes, shared by result export and resumable sweeps."""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Callable


def atomic_write(path: pathlib.Path, write: Callable[[pathlib.Path], None], error: str) -> None:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a fresh temporary file beside it, which is
    fsynced and moved over ``path`` with ``os.replace`` (then the folder is fsynced, so the rename is
    durable). An ``OSError`` is raised again with the same type and ``error: <reason>`` as its message;
    the temporary file is removed whatever goes wrong."""
    try:
        while True:  # a new file, created like ``open`` does (mode 0o666 minus the umask)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
        try:
            write(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        msg = f"{error}: {e.strerror or e}"
        try:
            err = type(e)(msg)  # keep the type (PermissionError, FileNotFoundError, ...)
        except TypeError:
            err = OSError(msg)
        raise err from e


def write_with(fill: Callable) -> Callable[[pathlib.Path], None]:
    """An ``atomic_write`` writer that calls ``fill(f)`` on the temporary file opened for binary writing."""

    def write(tmp: pathlib.Path) -> None:
        with open(tmp, "wb") as f:
            fill(f)

    return write


def _fsync_dir(folder: pathlib.Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
