"""The landing area: where raw videos arrive, one folder (or key prefix) per batch.

The root is a local folder or an fsspec URI (``s3://bucket/landing``, ``gs://…`` with gcsfs
installed, ``file://…``). Listing and the completeness rule work on either directly. Decoding
needs local files (PyAV seeks, the probe runs in a subprocess with a timeout), so for a remote
root a step first *stages* its batch: the batch's media files are copied into a local cache
(``<cache_dir>/<root id>/<batch>/``), skipping files already there with the same size and
modification time, and removing cached files that are no longer on the remote. The staged
folder has the same layout as the remote, so the relative paths stored in the tables
(``batch_003/x.mp4``) are the same for a local and a remote landing area. A local root is used
in place: staging returns it and copies nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from acav_assets.core.media.probe import MEDIA_SUFFIXES
from acav_assets.core.warehouse.tables import validate_batch_key

__all__ = ["READY_MARKER", "Landing", "StageReport", "batch_dir", "batch_is_complete", "is_remote", "landing_batches"]

#: Written last into a batch folder, it marks the batch complete (see :func:`batch_is_complete`).
READY_MARKER = "_READY"


def is_remote(root: str | os.PathLike) -> bool:
    """Whether ``root`` is a URI of a non-local filesystem (``s3://``, ``gs://``, ...)."""
    s = os.fspath(root)
    return "://" in s and not s.startswith("file://")


def _local(root: str | os.PathLike) -> Path:
    s = os.fspath(root)
    return Path(s[len("file://") :] if s.startswith("file://") else s)


# --- local folders ---------------------------------------------------------------------------


def batch_dir(landing_root: str | os.PathLike, batch: str) -> Path:
    """The folder of ``batch`` under a local landing root; refuses names that could escape it."""
    validate_batch_key(batch)
    root = _local(landing_root).resolve()
    path = (root / batch).resolve()
    if path.parent != root:
        raise ValueError(f"batch {batch!r} resolves outside the landing root {root}")
    return path


def _sort_batches(names: list[str]) -> tuple[list[str], dict[str, str]]:
    ok, rejected = [], {}
    for name in sorted(names):
        if name.startswith("."):
            continue
        try:
            validate_batch_key(name)
            ok.append(name)
        except ValueError as exc:
            rejected[name] = str(exc)
    return ok, rejected


def landing_batches(landing_root: str | os.PathLike) -> tuple[list[str], dict[str, str]]:
    """Batch folders under a local landing root: (valid keys sorted, {rejected name: why})."""
    root = _local(landing_root)
    if not root.is_dir():
        raise ValueError(f"landing root {root} does not exist or is not a folder")
    return _sort_batches([p.name for p in root.iterdir() if p.is_dir()])


def _completeness(
    marker: bool, mtimes: list[float | None], quiet_period_s: float, now: float | None
) -> tuple[bool, str]:
    if marker:
        return True, f"{READY_MARKER} present"
    if quiet_period_s <= 0:
        return False, f"waiting for {READY_MARKER}"
    if not mtimes:
        return False, "empty"
    if any(m is None for m in mtimes):
        return False, f"the store reports no modification times: waiting for {READY_MARKER}"
    age = (now or time.time()) - max(mtimes)
    if age >= quiet_period_s:
        return True, f"unchanged for {age:.0f} s"
    return False, f"changed {age:.0f} s ago (quiet period {quiet_period_s:g} s)"


def batch_is_complete(folder: str | os.PathLike, quiet_period_s: float, now: float | None = None) -> tuple[bool, str]:
    """Whether a local batch folder is complete, and why: it contains :data:`READY_MARKER`
    (write it last), or nothing in it has changed for ``quiet_period_s`` seconds (``<= 0``
    disables the quiet-period rule)."""
    folder = Path(folder)
    marker = (folder / READY_MARKER).exists()
    files = [] if marker else [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    return _completeness(marker, [p.lstat().st_mtime for p in files], quiet_period_s, now)


# --- either ----------------------------------------------------------------------------------


def _mtime(info: dict[str, Any]) -> float | None:
    """A modification time in epoch seconds from an fsspec info dict (keys differ by store)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        v = info.get(key)
        if v is None:
            continue
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


@dataclass
class StageReport:
    """What staging a batch did: files copied and kept, bytes copied, seconds."""

    local_root: Path
    copied: int = 0
    kept: int = 0
    removed: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0


class Landing:
    """A landing area on a local folder or an fsspec URI (see the module docs).

    ``storage_options`` go to fsspec (for s3fs: ``key``, ``secret``, ``endpoint_url``,
    ``client_kwargs``...; with none, credentials come from the environment as usual).
    ``cache_dir`` holds staged batches of a remote root (default: ``$ACAV_LANDING_CACHE`` or
    ``<tmp>/acav_landing_cache``). ``allowed_link_roots``: folders outside the area that its links
    may resolve into (:meth:`media_roots`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        storage_options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = None,
        *,
        allowed_link_roots=(),
    ):
        self.root = os.fspath(root).rstrip("/") if is_remote(root) else os.fspath(root)
        #: folders outside the landing area its links may point into (every step checks, before it opens a file)
        self.allowed_link_roots = tuple(os.fspath(r) for r in allowed_link_roots)
        self.remote = is_remote(self.root)
        self.storage_options = dict(storage_options or {})
        base = cache_dir or os.environ.get("ACAV_LANDING_CACHE") or Path(tempfile.gettempdir()) / "acav_landing_cache"
        # one cache folder per landing root, so two landing areas never mix their files
        self.cache_root = Path(base) / hashlib.blake2b(self.root.encode(), digest_size=6).hexdigest()
        self._fs = None
        self._path = ""

    def __repr__(self) -> str:
        return f"Landing({self.root!r})"

    def fs(self):
        """The fsspec filesystem of a remote root (created once, listings never cached)."""
        if self._fs is None:
            import fsspec

            try:
                self._fs, self._path = fsspec.core.url_to_fs(self.root, **self.storage_options)
            except (ImportError, ValueError) as exc:
                raise ValueError(f"cannot open landing area {self.root}: {exc}") from None
        return self._fs

    def _ls(self, path: str) -> list[dict[str, Any]]:
        fs = self.fs()
        fs.invalidate_cache(path)
        try:
            return fs.ls(path, detail=True)
        except FileNotFoundError:
            return []

    def _remote_batch(self, batch: str) -> str:
        validate_batch_key(batch)
        self.fs()
        return f"{self._path}/{batch}"

    # listing and completeness

    def batches(self) -> tuple[list[str], dict[str, str]]:
        """Batch folders: (valid keys sorted, {rejected name: why})."""
        if not self.remote:
            return landing_batches(self.root)
        fs = self.fs()
        try:
            exists = fs.exists(self._path)
        except OSError as exc:
            raise ValueError(f"cannot list landing area {self.root}: {exc}") from None
        if not exists:
            raise ValueError(f"landing root {self.root} does not exist")
        names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self._ls(self._path) if e.get("type") == "directory"]
        return _sort_batches(names)

    def is_complete(self, batch: str, quiet_period_s: float, now: float | None = None) -> tuple[bool, str]:
        """:func:`batch_is_complete` for a local or a remote batch."""
        if not self.remote:
            return batch_is_complete(batch_dir(self.root, batch), quiet_period_s, now)
        prefix = self._remote_batch(batch)
        fs = self.fs()
        fs.invalidate_cache(prefix)
        marker = fs.exists(f"{prefix}/{READY_MARKER}")
        infos = [] if marker else list(fs.find(prefix, detail=True).values())
        return _completeness(marker, [_mtime(i) for i in infos], quiet_period_s, now)

    def fingerprint(self, batch: str) -> str:
        """A digest of what the batch holds now: every entry's relative name, size and
        modification time (no file is read; the ``_READY`` marker does not count). Equal digests mean nothing was added, removed,
        replaced or touched, so the batch's derived rows are still current."""
        entries = []
        if not self.remote:
            folder = batch_dir(self.root, batch)
            if not folder.is_dir():
                raise ValueError(f"batch folder {folder} does not exist")
            for p in sorted(folder.rglob("*")):
                if (p.name.startswith(".") and ".part-" in p.name) or p.relative_to(folder).as_posix() == READY_MARKER:
                    continue  # a staging copy in flight; the completeness marker is not content
                try:
                    st = p.lstat()
                except OSError:
                    continue  # vanished while listing
                entries.append(f"{p.relative_to(folder).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_mode}")
        else:
            prefix = self._remote_batch(batch)
            fs = self.fs()
            fs.invalidate_cache(prefix)
            for name, info in sorted(fs.find(prefix, detail=True, withdirs=True).items()):
                if name[len(prefix) :].lstrip("/") == READY_MARKER:
                    continue
                entries.append(
                    f"{name[len(prefix) :].lstrip('/')}\t{info.get('size')}\t{_mtime(info)}\t{info.get('type')}"
                )
        return hashlib.blake2b("\n".join(entries).encode(), digest_size=12).hexdigest()

    # staging

    def local_root(self) -> Path:
        """The local folder whose ``<batch>/`` sub-folders hold the media: the root itself, or
        the staging cache of a remote root."""
        return self.cache_root if self.remote else _local(self.root)

    def media_roots(self, local_root: str | os.PathLike | None = None) -> tuple[str, ...]:
        """The folders a media file of this area may resolve into: its local root (or the given
        staged one) and the allowed link roots."""
        return (os.fspath(local_root if local_root is not None else self.local_root()), *self.allowed_link_roots)

    def stage(self, batch: str, log: Callable[[str], None] = lambda m: None) -> StageReport:
        """Make ``batch``'s media files available locally under :meth:`local_root` (a no-op for a
        local root). Each file is copied to a temporary name and renamed, so a killed copy
        never leaves a truncated video behind, and concurrent stagers never see one."""
        t0 = time.perf_counter()
        if not self.remote:
            folder = batch_dir(self.root, batch)
            if not folder.is_dir():
                raise ValueError(f"batch folder {folder} does not exist")
            return StageReport(_local(self.root))
        prefix = self._remote_batch(batch)
        entries = [e for e in self._ls(prefix) if Path(e["name"].rstrip("/")).suffix.lower() in MEDIA_SUFFIXES]
        if not entries and not self.fs().exists(prefix):
            raise ValueError(f"batch folder {self.root}/{batch} does not exist")
        dest = self.cache_root / batch
        dest.mkdir(parents=True, exist_ok=True)
        report = StageReport(self.cache_root)
        wanted = set()
        total = len(entries)
        for i, e in enumerate(entries, 1):
            name = e["name"].rstrip("/").rsplit("/", 1)[-1]
            wanted.add(name)
            local = dest / name
            if e.get("type") == "directory":  # a folder named like a video: mirrored, so it gets a row
                local.mkdir(exist_ok=True)
                continue
            size, mtime = int(e.get("size") or 0), _mtime(e)
            if (
                local.is_file()
                and local.stat().st_size == size
                and (mtime is None or int(local.stat().st_mtime) == int(mtime))
            ):
                report.kept += 1
                continue
            tmp = dest / f".{name}.part-{os.getpid()}"
            try:
                self.fs().get_file(e["name"], str(tmp))
                if mtime is not None:
                    os.utime(tmp, (mtime, mtime))
                os.replace(tmp, local)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise OSError(f"staging {self.root}/{batch}/{name} failed: {exc}") from exc
            report.copied += 1
            report.bytes_copied += size
            if i % 50 == 0 or i == total:
                log(f"staged {i}/{total} files of batch {batch} ({report.bytes_copied / 1e6:.1f} MB copied)")
        for p in dest.iterdir():  # files removed from the remote since an earlier staging
            if p.name not in wanted and not p.name.startswith("."):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                report.removed += 1
        report.seconds = time.perf_counter() - t0
        return report

    def fetch(self, relpath: str, dest_dir: str | os.PathLike) -> Path | None:
        """One media file of a remote root (``<batch>/<name>``, as the tables store it) copied into
        ``dest_dir``, for a file of an earlier batch that is no longer staged here (a
        near-duplicate comparison reads its picture). None for a local root, a path that is not a
        batch's media file, or a file the remote no longer has."""
        parts = relpath.split("/")
        if not self.remote or len(parts) < 2 or any(x in ("", ".", "..") for x in parts):
            return None
        if Path(relpath).suffix.lower() not in MEDIA_SUFFIXES:
            return None
        try:
            validate_batch_key(parts[0])
        except ValueError:
            return None
        name = f"{hashlib.blake2b(relpath.encode(), digest_size=8).hexdigest()}{Path(relpath).suffix}"
        dest = Path(dest_dir) / name
        if dest.is_file():
            return dest
        tmp = dest.with_name(f".{name}.part-{os.getpid()}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.fs().get_file(f"{self._path}/{relpath}", str(tmp))
            os.replace(tmp, dest)
        except (OSError, ValueError):
            tmp.unlink(missing_ok=True)
            return None
        return dest

    def release(self, batch: str) -> None:
        """Drop the staged copy of a remote batch (nothing for a local root)."""
        if self.remote:
            validate_batch_key(batch)
            shutil.rmtree(self.cache_root / batch, ignore_errors=True)

    def media_root_of(self, log: Callable[[str], None] = lambda m: None) -> Callable[[str], Path]:
        """A function ``batch -> local folder of its media`` that stages each batch once, on first
        use. A batch whose folder is gone maps to the local root (its clips are then recorded as
        missing by whoever reads them), with one line in ``log``."""
        roots: dict[str, Path] = {}

        def media_root(batch: str) -> Path:
            if batch not in roots:
                try:
                    roots[batch] = self.stage(batch, log=log).local_root
                except ValueError as exc:
                    log(str(exc))
                    roots[batch] = self.local_root()
            return roots[batch]

        return media_root
