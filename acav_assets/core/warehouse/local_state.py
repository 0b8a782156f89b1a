"""Where the state derived from a warehouse is kept on this machine.

A local warehouse keeps it inside its own folder (``<warehouse>/<name>``). An object-store
warehouse (``s3://…``, ``gs://…``) cannot hold a SQLite file or a Dagster home, so each machine
keeps its own copy under a cache folder, one subfolder per warehouse URI (a digest of it):
``$<env>`` when set, else ``~/.cache/acav_assets/<name>``.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

__all__ = ["MIN_FREE_BYTES", "check_free_space", "check_writable_folder", "disk_full", "local_state_dir"]

#: Free space a curation needs on the warehouse's file system before it starts (tables, the
#: fingerprint index and the Dagster home's event log grow by a few MB per batch).
MIN_FREE_BYTES = 16 * 1024 * 1024


def local_state_dir(root: str, name: str, env: str | None = None) -> Path:
    """The folder for state ``name`` (``_indexes``, ``_dagster``) of the warehouse at ``root``;
    ``env`` names the variable that moves the object-store cache."""
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" not in root:
        return Path(root) / name
    base = Path((os.environ.get(env) if env else None) or Path.home() / ".cache" / "acav_assets" / name.lstrip("_"))
    return base / hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:16]


def _nearest_existing(p: Path) -> Path:
    """``p``, or its nearest parent that exists (where a folder to be created would live)."""
    while not p.exists():
        p = p.parent
    return p


def check_writable_folder(path: str | os.PathLike, what: str) -> None:
    """Raise ValueError, naming ``what`` and the path, unless ``path`` is a folder this process
    can create files in, or can be created as one (its nearest existing parent is a writable
    folder). Nothing is created. A read-only file system counts as not writable, for root too."""
    p = Path(os.fspath(path)).expanduser()
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} {p} is a file, not a folder")
    existing = _nearest_existing(p)
    if not existing.is_dir():
        raise ValueError(f"{what} {p} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
        except OSError:
            read_only = False
        why = "on a read-only file system" if read_only else "not writable by this user"
        raise ValueError(f"{what} {p} cannot be written: {existing} is {why}")


def check_free_space(path: str | os.PathLike, what: str, need: int = MIN_FREE_BYTES) -> None:
    """Raise ValueError naming ``what`` unless the file system that holds (or would hold)
    ``path`` has ``need`` bytes free for this user."""
    st = os.statvfs(_nearest_existing(Path(os.fspath(path)).expanduser()))
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise ValueError(
            f"{what} {path}: only {free / 2**20:.1f} MiB free on its file system, "
            f"{need / 2**20:.0f} MiB needed: free some space first"
        )


_FULL_MESSAGES = ("no space left on device", "database or disk is full", "disk quota exceeded")


def disk_full(exc: BaseException | None) -> str | None:
    """When ``exc`` (or an exception it was raised from or during) says the disk is full: a
    short description, naming the file when the error does; else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"no space left on device writing {exc.filename}" if exc.filename else "no space left on device"
        text = str(exc).lower()
        for m in _FULL_MESSAGES:
            if m in text:
                return m
        exc = exc.__cause__ or exc.__context__
    return None
