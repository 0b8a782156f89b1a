"""Keeping the tables small and fast: compaction and vacuum.

Every batch write adds files (one Delta commit each); after many batches a table is many small
files, and replaced batches leave their old files behind for time travel. ``maintain``
compacts each table (rewrites small files into larger ones, a new table version; the data is
unchanged) and then vacuums files that no version newer than ``retain_hours`` needs; it also
drops the retired entries of the near-duplicate lookup index (its row counts videos, not files)
and, when that index was current, records the compacted files as what it reflects. Time
travel (``acav subset --as-of``) reaches back only as far as the retention. Run it when no
curation is writing (a concurrent writer may make a compaction fail; it is then safe to rerun).
"""

from __future__ import annotations

from dataclasses import dataclass

from deltalake import DeltaTable

from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex, index_path
from acav_assets.core.warehouse.tables import SCHEMAS, Warehouse

__all__ = ["Maintenance", "TableMaintenance", "maintain"]


@dataclass
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    files_removed: int  # deleted from storage by the vacuum


@dataclass
class Maintenance:
    tables: list[TableMaintenance]
    index_retired: int | None = (
        None  # retired videos dropped (or, dry run, to drop) from the lookup index; None: no index
    )


def maintain(
    wh: Warehouse, *, retain_hours: float = 168.0, tables: list[str] | None = None, dry_run: bool = False
) -> Maintenance:
    """Compact, then vacuum, each existing table (every known table by default); then tidy the
    near-duplicate lookup index."""
    if retain_hours < 0:
        raise ValueError(f"retain_hours must be >= 0, got {retain_hours}")
    unknown = sorted(set(tables or []) - set(SCHEMAS))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}: expected some of {sorted(SCHEMAS)}")
    where = index_path(wh)
    index = FingerprintIndex(wh, where) if where.exists() else None
    # a compaction rewrites the files the index follows: when it is current now, it adopts the
    # new files afterwards instead of re-reading every batch
    index_current = index is not None and not dry_run and not index.stale()
    out = []
    for name in tables or sorted(SCHEMAS):
        if not wh.exists(name):
            continue
        dt = DeltaTable(wh.uri(name), storage_options=wh._opts())
        before = len(dt.file_uris())
        if not dry_run:
            dt.optimize.compact()
            dt = DeltaTable(wh.uri(name), storage_options=wh._opts())
        removed = dt.vacuum(retention_hours=int(retain_hours), dry_run=dry_run, enforce_retention_duration=False)
        out.append(TableMaintenance(name, before, len(dt.file_uris()), len(removed)))
    if index_current:
        index.adopt()
    retired = None
    if index is not None and tables is None:
        retired = index.retired_videos()  # entries of re-indexed batches' old videos
        if retired and not dry_run:
            index.prune()
    return Maintenance(out, retired)
