"""Exporting a curated subset for training: WebDataset tar shards of exact clips and a manifest.

Layout of an export folder::

    <out>/clips-000000.tar   one sample per clip, keyed by clip_id: <clip_id>.mp4 (the window
    <out>/clips-000001.tar   re-encoded exactly, see export.cut), <clip_id>.json (ids, source,
    ...                      window, rank, gain, clusters, selection) and, with arrays,
                             <clip_id>.frames.npy / <clip_id>.audio.npy
    <out>/manifest.parquet   every sample: its shard, index and byte offset in it, the selection
    <out>/manifest.csv       and the curated_subset version it came from (also the Delta table
                             ``export_manifest`` of the warehouse, one key per export folder)

Safe and incremental: an export holds an exclusive lock on its folder (``.export.lock``,
``fcntl.flock``), so a second export into it waits, saying so, and then finds the clips already
written. A shard is written under a temporary name of its own (``<name>.<pid>.<token>.tmp``) and
committed by a hard link that never replaces an existing shard (the next free index is taken
instead), so a shard that exists is whole and two writers do not overwrite each other's shards
even where the lock does not reach. A rerun removes the ``.tmp`` leftovers of writers no longer
running, learns what earlier runs wrote from the
manifest, verified against the shards (a sample whose shard is gone or shorter than the
manifest says is exported again), and from the JSON of any complete shard the manifest does not
list yet (a run killed after a commit), and writes only the clips not yet exported, into new
shards: a warm start's new clips go into new shards; a killed export resumes without
duplicates. A clip whose media is gone or undecodable is recorded with its status
(``missing_media``, ``decode_error``) and retried by the next run; it never stops the export.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import secrets
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.cut import cut_or_reason as _encode  # workers import only av + numpy
from acav_assets.core.media.probe import resolves_inside
from acav_assets.core.processes import die_with_parent
from acav_assets.core.settings import setting
from acav_assets.core.statuses import ExportStatus
from acav_assets.core.warehouse.tables import SCHEMAS

__all__ = [
    "ExportConfig",
    "ExportReport",
    "MANIFEST_SCHEMA",
    "export_key",
    "export_lock",
    "export_subset",
    "read_manifest",
]

SHARD_PREFIX = "clips"

#: Columns of manifest.parquet (the warehouse's ``export_manifest`` adds export_key, export_dir).
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    c: t for c, t in SCHEMAS["export_manifest"].items() if c not in ("export_key", "export_dir")
}


@dataclass(frozen=True)
class ExportConfig:
    shard_max_bytes: int = 1_000_000_000  # a shard is closed once it reaches this size ...
    shard_max_clips: int = setting(0, "... or once it holds this many clips (0 = no limit)")
    workers: int = setting(0, "encoding processes (0 = one per core)")
    cut: CutConfig = field(default_factory=CutConfig)

    def __post_init__(self):
        if self.shard_max_bytes < 1_000_000:
            raise ValueError(f"shard_max_bytes must be >= 1 MB, got {self.shard_max_bytes}")
        if self.shard_max_clips < 0 or self.workers < 0:
            raise ValueError("shard_max_clips and workers must be >= 0")


@dataclass
class ExportReport:
    out_dir: str
    selection_id: str
    subset_version: str
    selected: int
    written: int = 0  # clips encoded by this run
    already: int = 0  # clips an earlier run had exported
    failed: dict[str, str] = field(default_factory=dict)  # clip_id -> status: error
    shards_written: list[str] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0
    stale: int = 0  # samples in the shards that are not in this subset (an earlier selection's)
    lost: list[str] = field(default_factory=list)  # listed by the manifest, missing from the shards: exported again
    manifest: pl.DataFrame | None = None

    @property
    def clips_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def read_manifest(out_dir: str | os.PathLike) -> pl.DataFrame:
    """The export folder's manifest (empty when none was written yet)."""
    p = Path(out_dir) / "manifest.parquet"
    return pl.read_parquet(p) if p.exists() else pl.DataFrame(schema=MANIFEST_SCHEMA)


def _shards(out: Path) -> list[Path]:
    return sorted(out.glob(f"{SHARD_PREFIX}-*.tar"))


@contextmanager
def export_lock(out_dir: str | os.PathLike, log: Callable[[str], None] = lambda m: None):
    """Hold the export folder exclusively (``<out>/.export.lock``): a second export into it
    waits, and says it does, until the first is done."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".export.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            log(f"another export is writing into {out} ({holder}); waiting for it to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _writer_alive(tmp: Path) -> bool:
    """Whether the process named in a temporary shard's name (``<name>.<pid>.<token>.tmp``) is
    still running on this machine (its file is then left alone: the lock may not reach it)."""
    parts = tmp.name.split(".")
    try:
        pid = int(parts[-3])
    except (IndexError, ValueError):
        return False  # an old-style name: no writer to ask
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _verified(manifest: pl.DataFrame, out: Path) -> tuple[pl.DataFrame, list[str]]:
    """The manifest's ok rows whose samples are in their shards, and the clip ids of those that
    are not: their shard is gone, or shorter than the manifest says (then it is renamed
    ``<name>.damaged``, out of the ``clips-*.tar`` pattern loaders read, and all its clips are
    exported again)."""
    ok = manifest.filter(pl.col("status") == ExportStatus.OK)
    if ok.height == 0:
        return ok, []
    sizes = {s.name: s.stat().st_size for s in _shards(out)}
    need = ok.group_by("shard").agg(
        (pl.col("offset_bytes").fill_null(0) + pl.col("sample_bytes").fill_null(0)).max().alias("end")
    )
    whole = set()
    for shard, end in need.iter_rows():
        if shard in sizes and sizes[shard] >= end:
            whole.add(shard)
        elif shard in sizes:
            os.replace(out / shard, out / f"{shard}.damaged")
    mask = ok["shard"].is_in(list(whole))
    return ok.filter(mask), ok.filter(~mask)["clip_id"].to_list()


def _recover(shard: Path) -> list[dict]:
    """Manifest rows of a complete shard, from its JSON members (a run killed before it wrote
    the manifest)."""
    rows, first = [], {}  # key -> (header offset of its first member, index in the shard)
    with tarfile.open(shard) as tar:
        for m in tar:
            key = m.name.split(".", 1)[0]
            first.setdefault(key, (m.offset, len(first)))
            if m.name.endswith(".json"):
                meta = json.loads(tar.extractfile(m).read())
                off, idx = first[key]
                rows.append(
                    {
                        **{k: meta.get(k) for k in MANIFEST_SCHEMA},
                        "status": ExportStatus.OK,
                        "shard": shard.name,
                        "index_in_shard": idx,
                        "offset_bytes": off,
                        "sample_bytes": None,
                    }
                )
    return rows


def _sample(cut, meta: dict) -> dict:
    sample = {"__key__": meta["clip_id"], "mp4": cut.mp4, "json": json.dumps(meta, sort_keys=True).encode()}
    for name, arr in (("frames.npy", cut.frames), ("audio.npy", cut.audio)):
        if arr is not None:
            b = io.BytesIO()
            np.save(b, arr)
            sample[name] = b.getvalue()
    return sample


def _in_order(jobs: list, workers: int) -> Iterator:
    """Results of ``_encode`` in the order of ``jobs``, at most a few per worker in flight."""
    if workers <= 1:
        yield from map(_encode, jobs)
        return
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch/Dagster threads
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        window = workers * 3
        futures = [pool.submit(_encode, j) for j in jobs[:window]]
        for i in range(len(jobs)):
            res = futures[i].result()
            futures[i] = None  # free the bytes once written
            if i + window < len(jobs):
                futures.append(pool.submit(_encode, jobs[i + window]))
            yield res


class _ShardWriter:
    """Writes samples into ``clips-NNNNNN.tar.tmp`` and renames each shard when it is full."""

    def __init__(
        self,
        out: Path,
        first_index: int,
        max_bytes: int,
        max_clips: int,
        on_shard: Callable[[str, int, int], None] | None = None,
    ):
        from webdataset import TarWriter

        self._tarwriter = TarWriter
        self.out, self.n, self.max_bytes, self.max_clips = out, first_index, max_bytes, max_clips
        self.tmp: Path | None = None
        self.on_shard = on_shard
        self.file = self.writer = None
        self.count = 0
        self.pending: list[dict] = []  # manifest rows of the open shard
        self.closed: list[tuple[str, list[dict], int]] = []  # (name, rows, bytes) of renamed shards

    @property
    def name(self) -> str:
        return f"{SHARD_PREFIX}-{self.n:06d}.tar"

    def write(self, sample: dict, row: dict) -> None:
        if self.writer is None:
            # a temporary name no other writer can have: this process, a random token
            self.tmp = self.out / f"{self.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            self.file = open(self.tmp, "wb")
            # fixed mtime and owner: a rerun writes byte-identical shards for the same clips
            self.writer = self._tarwriter(self.file, encoder=False, mtime=0, user="acav", group="acav")
            self.count = 0
        # the archive's own position: tarfile's stream mode buffers up to 10 KB before the file sees it
        offset = self.writer.tarstream.offset
        self.writer.write(sample)
        self.pending.append(
            {
                **row,
                "index_in_shard": self.count,
                "offset_bytes": offset,
                "sample_bytes": self.writer.tarstream.offset - offset,
            }
        )
        self.count += 1
        if self.writer.tarstream.offset >= self.max_bytes or (self.max_clips and self.count >= self.max_clips):
            self.close()

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.close()  # writes the tar end blocks; the file object stays ours
        self.file.flush()
        os.fsync(self.file.fileno())
        size = self.file.tell()
        self.file.close()
        name = self._commit()
        rows = [{**r, "shard": name} for r in self.pending]
        self.closed.append((name, rows, size))
        if self.on_shard:
            self.on_shard(name, len(rows), size)
        self.pending, self.writer, self.file, self.tmp = [], None, None, None
        self.n += 1

    def abort(self) -> None:
        """Drop the open shard (an error stopped the export): its file is closed and removed,
        whatever state the archive is in (a full disk cannot take its end blocks)."""
        if self.writer is not None:
            with contextlib.suppress(OSError, ValueError):
                self.writer.close()
            with contextlib.suppress(OSError):
                self.file.close()
            with contextlib.suppress(OSError):
                self.tmp.unlink()
        self.pending, self.writer, self.file, self.tmp = [], None, None, None

    def _commit(self) -> str:
        """Give the temporary file its shard name: the commit point of the shard. A hard link
        fails where the name exists (another writer took it): then the next index is tried, so
        a shard is never replaced. Where hard links are not supported, a rename of a name
        checked free."""
        while True:
            target = self.out / self.name
            try:
                os.link(self.tmp, target)
            except FileExistsError:
                self.n += 1
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                if target.exists():
                    self.n += 1
                    continue
                os.replace(self.tmp, target)
                return target.name
            os.unlink(self.tmp)
            return target.name


def export_subset(
    subset: pl.DataFrame,
    media_root: Callable[[str], Path],
    out_dir: str | os.PathLike,
    *,
    subset_version: str,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[int, int], None] | None = None,
    on_shard: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] = lambda m: None,
    lock: bool = True,
    allowed_roots: tuple[str, ...] = (),
) -> ExportReport:
    """Export the clips of ``subset`` (rows of ``curated_subset``) into ``out_dir``.

    ``media_root(batch)`` is the local folder the clips' ``path`` is relative to (the landing
    root, or a staged copy of a remote batch); a clip whose file now resolves outside it and
    ``allowed_roots`` is recorded ``outside_landing``, never opened. ``on_shard(name, clips, bytes)`` is called after
    each shard is committed. Holds :func:`export_lock` on the folder while it works (``lock``
    False: the caller holds it). Returns what was done; the manifest is written to ``out_dir``.
    """
    if subset.height == 0:
        raise ValueError("the subset is empty: nothing to export")
    if not lock:
        return _export(subset, media_root, Path(out_dir), subset_version, config, progress, on_shard, allowed_roots)
    with export_lock(out_dir, log):
        return _export(subset, media_root, Path(out_dir), subset_version, config, progress, on_shard, allowed_roots)


def _export(subset, media_root, out: Path, subset_version, config, progress, on_shard, allowed_roots) -> ExportReport:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob(f"{SHARD_PREFIX}-*.tar*.tmp"):
        if not _writer_alive(tmp):
            tmp.unlink(missing_ok=True)  # an interrupted shard: its clips are written again below
    sids = subset["selection_id"].unique().to_list()
    report = ExportReport(str(out), sids[0], subset_version, subset.height)

    manifest = read_manifest(out)
    verified, report.lost = _verified(manifest, out)
    known = set(manifest["shard"].drop_nulls().to_list())
    recovered = [r for s in _shards(out) if s.name not in known for r in _recover(s)]
    ok_rows = pl.concat([verified, pl.DataFrame(recovered, schema=MANIFEST_SCHEMA)], how="vertical_relaxed")
    done = set(ok_rows["clip_id"].to_list())
    wanted = subset.sort("rank")
    todo = wanted.filter(~pl.col("clip_id").is_in(list(done)))
    report.already = wanted.height - todo.height

    jobs, metas, outside = [], [], []
    for r in todo.iter_rows(named=True):
        meta = {
            "clip_id": r["clip_id"],
            "video_id": r["video_id"],
            "batch": r["batch"],
            "source_path": r["path"],
            "start_s": r["start_s"],
            "end_s": r["end_s"],
            "rank": r["rank"],
            "gain": r["gain"],
            "clusters": list(r["clusters"]) if r.get("clusters") is not None else None,
            "selection_id": r["selection_id"],
            "subset_version": subset_version,
        }
        path = media_root(r["batch"]) / r["path"]
        if not resolves_inside(path, (str(media_root(r["batch"])), *allowed_roots)):
            outside.append(meta)  # a link changed since probing: never opened
            continue
        jobs.append((str(path), r["start_s"], r["end_s"], config.cut))
        metas.append(meta)
    workers = config.workers or os.cpu_count() or 1
    first = max([int(s.stem.split("-")[1]) for s in _shards(out)], default=-1) + 1
    writer = _ShardWriter(out, first, config.shard_max_bytes, config.shard_max_clips, on_shard)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    failed_rows = []
    for meta in outside:
        why = f"{meta['source_path']} now resolves outside the landing area; not read"
        report.failed[meta["clip_id"]] = f"outside_landing: {why}"
        failed_rows.append({**meta, "status": "outside_landing", "error": why, "exported_at": now})
    try:
        for i, res in enumerate(_in_order(jobs, min(workers, max(1, len(jobs))))):
            meta = metas[i]
            if isinstance(res, tuple):
                report.failed[meta["clip_id"]] = f"{res[0]}: {res[1]}"
                failed_rows.append({**meta, "status": res[0], "error": res[1], "exported_at": now})
            else:
                info = {
                    "n_frames": res.n_frames,
                    "fps": res.fps,
                    "n_samples": res.n_samples,
                    "sample_rate": res.sample_rate,
                    "width": res.width,
                    "height": res.height,
                }
                writer.write(
                    _sample(res, {**meta, **info}), {**meta, **info, "status": ExportStatus.OK, "exported_at": now}
                )
                report.written += 1
            if progress:
                progress(i + 1, len(jobs))
        writer.close()
    except BaseException as exc:
        writer.abort()  # the open shard is dropped; committed shards stay and the next run finds them
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, os.strerror(exc.errno), str(out)) from exc  # name the folder
        raise
    report.shards_written = [name for name, _, _ in writer.closed]
    report.bytes_written = sum(size for _, _, size in writer.closed)
    new_rows = [r for _, rows, _ in writer.closed for r in rows]
    in_sel = set(wanted["clip_id"].to_list())
    rows = pl.concat(
        [ok_rows, pl.DataFrame(new_rows, schema=MANIFEST_SCHEMA), pl.DataFrame(failed_rows, schema=MANIFEST_SCHEMA)],
        how="vertical_relaxed",
    )
    rows = rows.with_columns(pl.col("clip_id").is_in(list(in_sel)).alias("in_selection")).select(
        [pl.col(c).cast(t) for c, t in MANIFEST_SCHEMA.items()]
    )
    report.stale = rows.filter(~pl.col("in_selection") & (pl.col("status") == ExportStatus.OK)).height
    tmp = out / "manifest.parquet.tmp"
    rows.write_parquet(tmp)
    os.replace(tmp, out / "manifest.parquet")
    rows.write_csv(out / "manifest.csv.tmp")
    os.replace(out / "manifest.csv.tmp", out / "manifest.csv")
    report.manifest = rows
    report.seconds = time.perf_counter() - t_start
    return report


def export_key(out_dir: str | os.PathLike) -> str:
    """The key of an export folder in the warehouse's ``export_manifest`` table."""
    return hashlib.blake2b(str(Path(out_dir).resolve()).encode(), digest_size=8).hexdigest()
