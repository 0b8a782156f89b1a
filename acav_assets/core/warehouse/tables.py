"""The Delta Lake warehouse: table schemas (the contract other tools read) and safe writes.

Every per-batch table is partitioned by ``batch``; writing a batch replaces exactly that batch's
rows in one atomic commit (a predicate overwrite), so re-materializing never duplicates rows and
a killed writer leaves the previous version. Tables are created on first write; when several
writers race to create one, the losers retry against the table the winner created.

Vectors are stored as ``List(Float32)``: polars reads Delta ``Array`` columns back with a schema
mismatch (see ../shared/ENVIRONMENT.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
    TableNotFoundError,
)

__all__ = ["SCHEMAS", "PARTITIONED", "Warehouse", "validate_batch_key", "BATCH_KEY_PATTERN"]

_VEC = pl.List(pl.Float32)

#: Column names and types of every table. Names are the contract; tools outside read them.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "videos": {
        "batch": pl.String,
        "video_id": pl.String,
        "path": pl.String,
        "status": pl.String,
        "error": pl.String,
        "size_bytes": pl.Int64,
        "duration_s": pl.Float64,
        "video_start_s": pl.Float64,
        "video_codec": pl.String,
        "width": pl.Int32,
        "height": pl.Int32,
        "fps": pl.Float64,
        "audio_codec": pl.String,
        "sample_rate": pl.Int32,
        "channels": pl.Int32,
        "duplicate_of": pl.String,
    },
    "clips": {
        "batch": pl.String,
        "clip_id": pl.String,
        "video_id": pl.String,
        "path": pl.String,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
    },
    "clip_embeddings": {
        "batch": pl.String,
        "clip_id": pl.String,
        "feature_space": pl.String,
        "vector": _VEC,
    },
    "clip_sync": {
        "batch": pl.String,
        "clip_id": pl.String,
        "offset_s": pl.Float64,  # > 0: the sound comes late; null: unknown (no usable events)
        "sync_score": pl.Float64,  # in [0, 1], high: in sync; null: unknown
        "n_events": pl.Int64,
        "method": pl.String,
        "reason": pl.String,
        "out_of_sync": pl.Boolean,  # null: unknown
    },
    "cluster_centroids": {
        "clustering_id": pl.String,
        "feature_space": pl.String,
        "cluster": pl.Int32,
        "centroid": _VEC,
        "k": pl.Int32,
        "dim": pl.Int32,
        "normalize": pl.Boolean,
        "params": pl.String,
        "mean": _VEC,
        "projection": _VEC,
    },
    "cluster_assignments": {
        "batch": pl.String,
        "clip_id": pl.String,
        "clustering_id": pl.String,
        "feature_space": pl.String,
        "cluster": pl.Int32,
        "distance": pl.Float32,
    },
    "curated_subset": {
        "clip_id": pl.String,
        "video_id": pl.String,
        "path": pl.String,
        "rank": pl.Int64,
        "gain": pl.Float64,
        "batch": pl.String,
        "step": pl.Int64,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "selection_id": pl.String,
        "clusters": pl.List(pl.Int32),  # the clip's cluster in each clustering of its selection run, in order
        "agreement": pl.Float64,  # label-free sound-picture agreement (stages.agreement); null without it
        "chosen_by": pl.String,  # "mi" (the MI search) or "agreement" (entered by the refinement)
    },
    "selection_runs": {
        "selection_id": pl.String,
        "created_at": pl.String,
        "params": pl.String,
        "clustering_ids": pl.List(pl.String),
        "feature_spaces": pl.List(pl.String),
        "batches": pl.List(pl.String),
        "pool_size": pl.Int64,
        "size": pl.Int64,
        "objective": pl.Float64,
        "seed": pl.Int64,
        # JSON list, one entry per clustering pair: {"a", "b" (feature spaces), "score" (the pool's
        # adjusted MI), "z" (distance from the permutation null), "weight"}; see selection.weighting
        "pair_weights": pl.String,
        "weighting": pl.String,
        "semantic_duplicates": pl.Int64,  # clips left out of the pool by semantic dedup (all runs it extends)
        "out_of_sync_excluded": pl.Int64,  # clips flagged out of sync left out of the pool (all runs it extends)
        "refinement": pl.String,  # JSON: the refinement after the MI search (rule, pairs, swaps, note)
    },
    # clips that semantic dedup left out of a selection's pool, and the kept clip each repeats
    "semantic_duplicates": {
        "selection_id": pl.String,
        "clip_id": pl.String,
        "duplicate_of": pl.String,
        "cosine": pl.Float32,
    },
    "selection_lineage": {
        "selection_id": pl.String,
        "pair_index": pl.Int32,
        "clustering_a": pl.String,
        "clustering_b": pl.String,
        "feature_space_a": pl.String,
        "feature_space_b": pl.String,
        "cluster_a": pl.Int32,
        "cluster_b": pl.Int32,
        "pool_count": pl.Int64,
        "selected_count": pl.Int64,
        "mi_contribution": pl.Float64,
        "pair_mi": pl.Float64,
        "pair_score": pl.Float64,
        "pair_weight": pl.Float64,  # the pool's adjusted MI of the pair; its weight
    },
    # perceptual fingerprints of the ok videos (see core.media.fingerprint), over the centre span
    # of each: picture sample times ("key_*": informative frames at fixed times), 64-bit picture
    # hashes and DCT coefficients; sound hashes every
    # 0.25 s, and which windows sound
    "video_fingerprints": {
        "batch": pl.String,
        "video_id": pl.String,
        "path": pl.String,
        "key_times": pl.List(pl.Float64),
        "key_hashes": pl.List(pl.Int64),
        "key_vectors": pl.List(pl.Float32),  # 63 per picture sample
        "audio_hashes": pl.List(pl.Int64),
        "audio_sounding": pl.List(pl.Boolean),
        "audio_start_s": pl.Float64,  # where sound window 0 starts (the fingerprinted span's start)
    },
    # one row per sample of an export folder (WebDataset shards; see core.export.shards)
    "export_manifest": {
        "export_key": pl.String,
        "export_dir": pl.String,
        "clip_id": pl.String,
        "video_id": pl.String,
        "batch": pl.String,
        "source_path": pl.String,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "rank": pl.Int64,
        "gain": pl.Float64,
        "selection_id": pl.String,
        "subset_version": pl.String,
        "status": pl.String,
        "error": pl.String,  # ok | missing_media | decode_error
        "shard": pl.String,
        "index_in_shard": pl.Int64,
        "offset_bytes": pl.Int64,
        "sample_bytes": pl.Int64,
        "n_frames": pl.Int64,
        "fps": pl.Float64,
        "width": pl.Int64,
        "height": pl.Int64,
        "n_samples": pl.Int64,
        "sample_rate": pl.Int64,
        "in_selection": pl.Boolean,  # in the subset the export was made from (else left in a shard)
        "exported_at": pl.String,
    },
}

#: Tables partitioned by batch (one dynamic partition of the Dagster layer each).
PARTITIONED = frozenset(
    {"videos", "video_fingerprints", "clips", "clip_embeddings", "clip_sync", "cluster_assignments"}
)

#: A batch key: a folder name that is safe everywhere (paths, predicates, partition keys, URLs).
BATCH_KEY_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_BATCH_RE = re.compile(BATCH_KEY_PATTERN)


def validate_batch_key(key: str) -> str:
    """Return ``key`` if it is a safe batch key, else raise ValueError saying why."""
    if not isinstance(key, str) or not _BATCH_RE.fullmatch(key) or key in (".", ".."):
        raise ValueError(
            f"invalid batch name {key!r}: use 1-128 characters from letters, digits, '.', '_' and '-', "
            f"starting with a letter or digit (no spaces, quotes, commas or path separators)"
        )
    return key


def frame(table: str, rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Rows as a DataFrame with exactly the table's columns and types (extra keys dropped)."""
    schema = SCHEMAS[table]
    if isinstance(rows, pl.DataFrame):
        missing = [c for c in schema if c not in rows.columns]
        if missing:
            raise ValueError(f"{table}: missing columns {missing}")
        return rows.select([pl.col(c).cast(t) for c, t in schema.items()])
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema, orient="row")


@dataclass
class Warehouse:
    """A folder (or object-store prefix) holding one Delta table per name."""

    root: str
    storage_options: Mapping[str, str] | None = field(default=None)
    retries: int = 8

    def __post_init__(self):
        if not isinstance(self.root, str) or not self.root.strip():
            raise ValueError("the warehouse root is empty: give a folder or an object-store URI")

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def _opts(self):
        return dict(self.storage_options) if self.storage_options else None

    def exists(self, table: str) -> bool:
        try:
            DeltaTable(self.uri(table), storage_options=self._opts())
            return True
        except TableNotFoundError:
            return False

    def batch_files(self, table: str) -> tuple[str, dict[str, list[str]]] | None:
        """The table's id (new when it is recreated) and, per batch, its data files now (from
        the Delta log: no data is read); None when the table does not exist."""
        if table not in PARTITIONED:
            raise ValueError(f"{table} is not partitioned by batch")
        try:
            dt = DeltaTable(self.uri(table), storage_options=self._opts())
        except TableNotFoundError:
            return None
        files: dict[str, list[str]] = {}
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        if actions.height:
            for path, batch in actions.select("path", "partition.batch").iter_rows():
                files.setdefault(batch, []).append(path)
        return dt.metadata().id, {b: sorted(p) for b, p in files.items()}

    def version(self, table: str) -> int | None:
        try:
            return DeltaTable(self.uri(table), storage_options=self._opts()).version()
        except TableNotFoundError:
            return None

    def first_commit_time(self, table: str) -> datetime | None:
        """When the oldest version of ``table`` still in its log was written (UTC); None when
        the table does not exist."""
        try:
            history = DeltaTable(self.uri(table), storage_options=self._opts()).history()
        except TableNotFoundError:
            return None
        stamps = [h["timestamp"] for h in history if h.get("timestamp") is not None]
        return datetime.fromtimestamp(min(stamps) / 1000, timezone.utc) if stamps else None

    def batches(self, table: str, *, version: int | None = None) -> list[str]:
        """The batch partitions of a partitioned table (from the Delta log: no data is read)."""
        if table not in PARTITIONED:
            raise ValueError(f"{table} is not partitioned by batch")
        try:
            dt = DeltaTable(self.uri(table), version=version, storage_options=self._opts())
        except TableNotFoundError:
            return []
        return sorted({p["batch"] for p in dt.partitions()})

    def _write(self, table: str, df: pl.DataFrame, *, mode: str, predicate: str | None = None) -> None:
        partition_by = ["batch"] if table in PARTITIONED else None
        for attempt in range(self.retries):
            try:
                # schema_mode="merge": a table written by an earlier version gains the columns
                # added since (older rows read them as null); a type change still fails
                write_deltalake(
                    self.uri(table),
                    df,
                    mode=mode,
                    predicate=predicate,
                    schema_mode="merge",
                    partition_by=partition_by,
                    storage_options=self._opts(),
                )
                return
            except (CommitFailedError, DeltaError) as exc:
                # A concurrent writer created the table or committed first: try again on top.
                # (A killed writer never commits: Delta's log entry is the atomic step, so the
                # table stays at its previous version; its orphaned data files are ignored.)
                if attempt == self.retries - 1 or not _retryable(exc):
                    raise
                time.sleep(0.05 * (2**attempt))

    def write_batch(self, table: str, batch: str, rows: list[dict] | pl.DataFrame) -> int:
        """Replace exactly ``batch``'s rows of a partitioned table; returns rows written."""
        if table not in PARTITIONED:
            raise ValueError(f"{table} is not partitioned by batch")
        validate_batch_key(batch)
        return self._replace_where(table, "batch", batch, rows)

    def overwrite(self, table: str, rows: list[dict] | pl.DataFrame) -> int:
        """Replace a whole unpartitioned table (a new version; earlier ones stay readable)."""
        df = frame(table, rows)
        self._write(table, df, mode="overwrite")
        return df.height

    def replace_key(self, table: str, column: str, key: str, rows: list[dict] | pl.DataFrame) -> int:
        """Replace the rows whose ``column`` equals ``key`` (an upsert by key, in one commit)."""
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,200}", key):
            raise ValueError(f"unsafe key for {table}.{column}: {key!r}")
        return self._replace_where(table, column, key, rows)

    def _replace_where(self, table: str, column: str, key: str, rows: list[dict] | pl.DataFrame) -> int:
        """One predicate overwrite of the rows whose ``column`` equals ``key`` (validated by the
        caller, so it cannot break out of the quoted literal)."""
        df = frame(table, rows)
        if df.height and (df[column] != key).any():
            raise ValueError(f"rows for {table} carry a {column} other than {key!r}")
        self._write(table, df, mode="overwrite", predicate=f"{column} = '{key}'")
        return df.height

    def append(self, table: str, rows: list[dict] | pl.DataFrame) -> int:
        df = frame(table, rows)
        self._write(table, df, mode="append")
        return df.height

    def batches_rewritten_after(self, table: str, version: int) -> list[str]:
        """Batches of a partitioned table whose rows were written after table ``version``, read
        from the Delta log (each batch write is one commit with the predicate ``batch = '<name>'``;
        compactions change no rows and name none)."""
        if table not in PARTITIONED:
            raise ValueError(f"{table} is not partitioned by batch")
        current = self.version(table)
        if current is None or current <= version:
            return []
        found = set()
        for entry in DeltaTable(self.uri(table), storage_options=self._opts()).history(limit=current - version):
            if entry.get("version", -1) <= version:
                continue
            m = re.fullmatch(r"batch = '([^']*)'", str((entry.get("operationParameters") or {}).get("predicate", "")))
            if m:
                found.add(m.group(1))
        return sorted(found)

    def scan(self, table: str, *, version: int | str | None = None) -> pl.LazyFrame:
        """Lazy scan (filter and project before collecting); an empty frame if the table is absent."""
        if not self.exists(table):
            if version is not None:
                raise ValueError(f"table {table} does not exist in {self.root}, so it has no version {version!r}")
            return pl.LazyFrame(schema=SCHEMAS[table])
        return pl.scan_delta(self.uri(table), version=version, storage_options=self._opts())

    def read(self, table: str, **kw) -> pl.DataFrame:
        return self.scan(table, **kw).collect()


def _retryable(exc: Exception) -> bool:
    """A lost race with another writer: a commit conflict (its own exception type), or two
    writers creating the same table (delta-rs reports that as a DeltaError naming the existing
    version). Schema and protocol errors, a missing table, anything else: never retried."""
    if isinstance(exc, CommitFailedError):
        return True
    if isinstance(exc, (SchemaMismatchError, TableNotFoundError, DeltaProtocolError)) or not isinstance(
        exc, DeltaError
    ):
        return False
    text = str(exc).lower()
    return any(s in text for s in ("already exists", "conflict", "concurrent"))
