"""Exporting a curated subset for training: WebDataset tar shards of exact clips and a manifest.

Layout of an export folder::

    <out>/clips-000000.tar   one sample per clip, keyed by clip_id: <clip_id>.mp4 (the window
    <out>/clips-000001.tar   re-encoded exactly, see export.cut), <clip_id>.json (ids, source,
    ...                      window, rank, gain, clusters, selection) and, with arrays,
                             <clip_id>.frames.npy / <clip_id>.audio.npy
    <out>/manifest.parquet   every sample: its shard, index and byte offset in it, the selection
    <out>/manifest.csv       and the curated_subset version it came from (also the Delta table
                             ``export_manifest`` of the warehouse, one key per export folder)

Safe and incremental: a shard is written as ``<name>.tar.tmp`` and renamed when complete, so a
shard that exists is whole. A rerun removes ``.tmp`` leftovers, learns what earlier runs wrote
from the manifest and from the JSON of any complete shard the manifest does not list yet (a run
killed after a rename), and writes only the clips not yet exported, into new shards: a warm
start's new clips go into new shards; a killed export resumes without duplicates. A clip whose
media is gone or undecodable is recorded with its status (``missing_media``, ``decode_error``)
and retried by the next run; it never stops the export.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import multiprocessing
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.cut import cut_or_reason as _encode  # workers import only av + numpy
from acav_assets.core.warehouse.tables import SCHEMAS

__all__ = ["ExportConfig", "ExportReport", "MANIFEST_SCHEMA", "export_key", "export_subset", "read_manifest"]

SHARD_PREFIX = "clips"

#: Columns of manifest.parquet (the warehouse's ``export_manifest`` adds export_key, export_dir).
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    c: t for c, t in SCHEMAS["export_manifest"].items() if c not in ("export_key", "export_dir")}


@dataclass(frozen=True)
class ExportConfig:
    shard_max_bytes: int = 1_000_000_000  # a shard is closed once it reaches this size ...
    shard_max_clips: int = 0  # ... or this many clips (0: no limit)
    workers: int = 0  # encoding processes (0: one per core)
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
                rows.append({**{k: meta.get(k) for k in MANIFEST_SCHEMA}, "status": "ok", "shard": shard.name,
                             "index_in_shard": idx, "offset_bytes": off, "sample_bytes": None})
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
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
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

    def __init__(self, out: Path, first_index: int, max_bytes: int, max_clips: int,
                 on_shard: Callable[[str, int, int], None] | None = None):
        from webdataset import TarWriter

        self._tarwriter = TarWriter
        self.out, self.n, self.max_bytes, self.max_clips = out, first_index, max_bytes, max_clips
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
            self.file = open(self.out / (self.name + ".tmp"), "wb")
            # fixed mtime and owner: a rerun writes byte-identical shards for the same clips
            self.writer = self._tarwriter(self.file, encoder=False, mtime=0, user="acav", group="acav")
            self.count = 0
        # the archive's own position: tarfile's stream mode buffers up to 10 KB before the file sees it
        offset = self.writer.tarstream.offset
        self.writer.write(sample)
        self.pending.append({**row, "shard": self.name, "index_in_shard": self.count, "offset_bytes": offset,
                             "sample_bytes": self.writer.tarstream.offset - offset})
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
        os.replace(self.out / (self.name + ".tmp"), self.out / self.name)  # the commit point of the shard
        self.closed.append((self.name, self.pending, size))
        if self.on_shard:
            self.on_shard(self.name, len(self.pending), size)
        self.pending, self.writer, self.file = [], None, None
        self.n += 1


def export_subset(subset: pl.DataFrame, media_root: Callable[[str], Path], out_dir: str | os.PathLike, *,
                  subset_version: str, config: ExportConfig = ExportConfig(),
                  progress: Callable[[int, int], None] | None = None,
                  on_shard: Callable[[str, int, int], None] | None = None) -> ExportReport:
    """Export the clips of ``subset`` (rows of ``curated_subset``) into ``out_dir``.

    ``media_root(batch)`` is the local folder the clips' ``path`` is relative to (the landing
    root, or a staged copy of a remote batch). ``on_shard(name, clips, bytes)`` is called after
    each shard is renamed. Returns what was done; the manifest is written to ``out_dir``.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob(f"{SHARD_PREFIX}-*.tar.tmp"):
        tmp.unlink()  # an interrupted shard: its clips are written again below
    if subset.height == 0:
        raise ValueError("the subset is empty: nothing to export")
    sids = subset["selection_id"].unique().to_list()
    report = ExportReport(str(out), sids[0], subset_version, subset.height)

    manifest = read_manifest(out)
    known = set(manifest["shard"].drop_nulls().to_list())
    recovered = [r for s in _shards(out) if s.name not in known for r in _recover(s)]
    ok_rows = pl.concat([manifest.filter(pl.col("status") == "ok"),
                         pl.DataFrame(recovered, schema=MANIFEST_SCHEMA)], how="vertical_relaxed")
    done = set(ok_rows["clip_id"].to_list())
    wanted = subset.sort("rank")
    todo = wanted.filter(~pl.col("clip_id").is_in(list(done)))
    report.already = wanted.height - todo.height

    jobs, metas = [], []
    for r in todo.iter_rows(named=True):
        meta = {"clip_id": r["clip_id"], "video_id": r["video_id"], "batch": r["batch"], "source_path": r["path"],
                "start_s": r["start_s"], "end_s": r["end_s"], "rank": r["rank"], "gain": r["gain"],
                "clusters": list(r["clusters"]) if r.get("clusters") is not None else None,
                "selection_id": r["selection_id"], "subset_version": subset_version}
        jobs.append((str(media_root(r["batch"]) / r["path"]), r["start_s"], r["end_s"], config.cut))
        metas.append(meta)
    workers = config.workers or os.cpu_count() or 1
    first = max([int(s.stem.split("-")[1]) for s in _shards(out)], default=-1) + 1
    writer = _ShardWriter(out, first, config.shard_max_bytes, config.shard_max_clips, on_shard)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    failed_rows = []
    for i, res in enumerate(_in_order(jobs, min(workers, max(1, len(jobs))))):
        meta = metas[i]
        if isinstance(res, tuple):
            report.failed[meta["clip_id"]] = f"{res[0]}: {res[1]}"
            failed_rows.append({**meta, "status": res[0], "error": res[1], "exported_at": now})
        else:
            info = {"n_frames": res.n_frames, "fps": res.fps, "n_samples": res.n_samples,
                    "sample_rate": res.sample_rate, "width": res.width, "height": res.height}
            writer.write(_sample(res, {**meta, **info}), {**meta, **info, "status": "ok", "exported_at": now})
            report.written += 1
        if progress:
            progress(i + 1, len(jobs))
    writer.close()
    report.shards_written = [name for name, _, _ in writer.closed]
    report.bytes_written = sum(size for _, _, size in writer.closed)
    new_rows = [r for _, rows, _ in writer.closed for r in rows]
    in_sel = set(wanted["clip_id"].to_list())
    rows = pl.concat([ok_rows, pl.DataFrame(new_rows, schema=MANIFEST_SCHEMA),
                      pl.DataFrame(failed_rows, schema=MANIFEST_SCHEMA)], how="vertical_relaxed")
    rows = rows.with_columns(pl.col("clip_id").is_in(list(in_sel)).alias("in_selection")).select(
        [pl.col(c).cast(t) for c, t in MANIFEST_SCHEMA.items()])
    report.stale = rows.filter(~pl.col("in_selection") & (pl.col("status") == "ok")).height
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
