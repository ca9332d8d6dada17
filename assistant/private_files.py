"""Owner-only permissions for what holds patient data: the data dir (0700) and the session
database with its WAL/SHM companions (0600).

SQLite creates its files with the process umask (usually 0644: world-readable); creating the
file first with 0600 makes SQLite keep that mode for the database and copy it to -wal/-shm.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) owner-only; tighten it when it exists and is ours."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with 0600 unless it exists; tighten it (and SQLite's companions)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if companion.exists():
            _tighten(companion, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        info = path.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(mode)
    except OSError:
        pass  # not ours or gone: leave it (the caller's open() will say what is wrong)


def private_temp_dir(prefix: str) -> str:
    """An owner-only folder under the temp dir, one per user (``<prefix>-<uid>``); a folder of
    that name that is a link or owned by someone else is not used (a fresh one is made)."""
    path = Path(tempfile.gettempdir()) / f"{prefix}-{os.geteuid()}"
    try:
        if not path.is_symlink():
            private_dir(path)
            info = path.stat()
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == DIR_MODE:
                return str(path)
    except OSError:
        pass
    return tempfile.mkdtemp(prefix=f"{prefix}-")
