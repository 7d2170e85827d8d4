"""Atomic file writing: the one way this package puts a finished file in place.

A file is written to a hidden temporary name in its own folder (``.{name}.{8 hex digits}.tmp``), flushed and
fsynced, then moved into place in one step, so no reader ever sees a partial file and a killed process
leaves at most a temporary file that `temporary_file_target` recognises. New files get the permissions
``open()`` would give (0o666 minus the umask). Without `overwrite` an existing file is never replaced, not
even one that appears while the temporary file is written (the move is a hard link, which fails if the name
exists; file systems without hard links fall back to a check and a rename).

Errors are plain `OSError`s (`FileExistsError` for a refused replace); each caller turns them into its own
one-line message.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_writer",
    "atomic_write_bytes",
    "atomic_write_text",
    "default_file_mode",
    "move_into_place",
    "temporary_file_target",
    "temporary_path",
]

_TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{8}\.tmp")


def temporary_path(path: Path) -> Path:
    """A fresh temporary name for writing `path`, in the same folder (so the final move is one step)."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def temporary_file_target(name: str) -> str | None:
    """The file name a temporary file called `name` was written for, or None when it is not one of ours."""
    match = _TEMPORARY_NAME.fullmatch(name)
    return match["target"] if match else None


def default_file_mode() -> int:
    """The permissions `open()` would give a new file (0o666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def move_into_place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished `tmp` to `path` in one step. Without `overwrite` an existing `path` raises
    `FileExistsError`, also one that appeared while `tmp` was written. `tmp` may remain (the caller removes
    it)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if `path` exists: never replaces a file
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(17, "File exists", str(path)) from None
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], *, overwrite: bool) -> Iterator[BinaryIO]:
    """``with atomic_writer(path, overwrite=False) as f: f.write(...)``: `path` appears, complete, when the
    block ends without an error; on any error nothing appears and the temporary file is removed."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(17, "File exists", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        # O_EXCL: never write into someone else's file; mode 0o666 lets the umask decide the permissions.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        move_into_place(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool) -> Path:
    """Write `data` to `path` atomically (see `atomic_writer`)."""
    with atomic_writer(path, overwrite=overwrite) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool) -> Path:
    """Write `text` as UTF-8 to `path` atomically (see `atomic_writer`); newlines are written as given."""
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)
