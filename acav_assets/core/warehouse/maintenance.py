"""Keeping the tables small and fast: compaction and vacuum.

Every batch write adds files (one Delta commit each); after many batches a table is many small
files, and replaced batches leave their old files behind for time travel. ``maintain``
compacts each table (rewrites small files into larger ones, a new table version; the data is
unchanged) and then vacuums files that no version newer than ``retain_hours`` needs. Time
travel (``acav subset --as-of``) reaches back only as far as the retention. Run it when no
curation is writing (a concurrent writer may make a compaction fail; it is then safe to rerun).
"""

from __future__ import annotations

from dataclasses import dataclass

from deltalake import DeltaTable

from acav_assets.core.warehouse.tables import SCHEMAS, Warehouse

__all__ = ["TableMaintenance", "maintain"]


@dataclass
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    files_removed: int  # deleted from storage by the vacuum


def maintain(wh: Warehouse, *, retain_hours: float = 168.0, tables: list[str] | None = None,
             dry_run: bool = False) -> list[TableMaintenance]:
    """Compact, then vacuum, each existing table (every known table by default)."""
    if retain_hours < 0:
        raise ValueError(f"retain_hours must be >= 0, got {retain_hours}")
    unknown = sorted(set(tables or []) - set(SCHEMAS))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}: expected some of {sorted(SCHEMAS)}")
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
    return out
