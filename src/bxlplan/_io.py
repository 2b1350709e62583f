"""Atomic file writes shared by the fetcher and the exports.

A file is written under a temporary name in its target folder and renamed over the
target only when complete: a failure never leaves a partial file, and never replaces a
good one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import DataError

__all__ = ["atomic_path", "atomic_write", "check_target"]


def _publish(tmp: Path, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    if tmp.is_file():
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files
    os.replace(tmp, path)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(
    path: Path, *, overwrite: bool = False, suffix: str = ""
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    Raises
    ------
    DataError
        When ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = tmpdir / (path.stem + (suffix or path.suffix))
    try:
        yield tmp
        _publish(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless ``overwrite``."""
    if Path(path).exists() and not overwrite:
        raise DataError(
            f"{path} already exists: pass --overwrite (overwrite=True) to replace it"
        )
