"""A lookup index over the fingerprint hashes of every kept video, kept on local disk.

Finding the earlier copies of a new batch's videos must not load every earlier fingerprint
(10M videos × thousands of hashes). The index is a SQLite file (Python's standard library: a
B-tree on disk, read page by page, transactions across processes) holding, for each *kept*
video of the warehouse (status ``ok`` after near-duplicate marking), its sound and keyframe
hashes under multi-index-hashing keys: each 64-bit hash is filed under its two 32-bit halves,
and a lookup probes each half and its 32 one-bit variants (66 keys per hash). Every hash within
3 bits of a query is found that way (more when the flips fall in one half), so a lookup reads a
fixed number of B-tree entries per query hash, whatever the size of the warehouse (the B-tree's
depth grows with its logarithm).

It is derived data: the Delta tables ``video_fingerprints`` and ``videos`` stay the record.
:meth:`FingerprintIndex.sync` brings the index up to date from their Delta logs: a batch whose
data files differ from those it last saw (every batch write replaces them) is re-read, one
partition each; a missing file or recreated tables rebuild it batch by batch. (Not the log's
history: it may be cleaned up, and reading it hung against an S3 test server.) A re-indexed
batch's old entries are retired (``live = 0``), not deleted, so re-indexing costs the batch
alone; :meth:`FingerprintIndex.prune` drops retired entries and :meth:`FingerprintIndex.adopt`
records the files a compaction rewrote (both in ``acav maintain``).

Where it lives: ``<warehouse>/_indexes/`` for a local warehouse; for an object-store warehouse
a local cache folder (``ACAV_INDEX_DIR``, default ``~/.cache/acav_assets/indexes``) keyed by
the warehouse URI, so each machine keeps its own copy in step with the shared tables.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
from collections.abc import Callable
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.bits import popcount64
from acav_assets.core.statuses import VideoStatus
from acav_assets.core.warehouse.local_state import local_state_dir
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["FingerprintIndex", "index_path", "lookup_lock", "most_per_group", "probe_keys"]

SOUND, PICTURE = 0, 1  # which hashes a key belongs to
_TABLES = ("video_fingerprints", "videos")
_FLIPS = np.concatenate([[0], 1 << np.arange(32)]).astype(np.int64)  # a half and its 32 one-bit variants
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS batch_state (tbl TEXT NOT NULL, batch TEXT NOT NULL, sig TEXT NOT NULL,
                                        PRIMARY KEY (tbl, batch));
CREATE TABLE IF NOT EXISTS videos (ordinal INTEGER PRIMARY KEY, batch TEXT NOT NULL, video_id TEXT NOT NULL,
                                   path TEXT NOT NULL, live INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS videos_batch ON videos (batch, live);
CREATE TABLE IF NOT EXISTS hashes (key INTEGER NOT NULL, hash INTEGER NOT NULL, ordinal INTEGER NOT NULL,
                                   PRIMARY KEY (key, ordinal, hash)) WITHOUT ROWID;
"""


def most_per_group(found: np.ndarray, groups: np.ndarray | None) -> dict[int, int]:
    """``found``: distinct (query hash, video) rows. Per video, how many query hashes found it;
    with ``groups`` (the group of each query hash), the most found by any one group."""
    if not found.size:
        return {}
    group = groups[found[:, 0]] if groups is not None else np.zeros(len(found), np.int64)
    pairs, counts = np.unique(np.c_[found[:, 1], group], axis=0, return_counts=True)
    by_group: dict[int, int] = {}
    for (video, _), n in zip(pairs.tolist(), counts.tolist()):
        by_group[video] = max(by_group.get(video, 0), n)
    return by_group


def index_path(wh: Warehouse) -> Path:
    """Where the index of ``wh`` is kept (see the module docstring)."""
    return local_state_dir(wh.root, "_indexes", "ACAV_INDEX_DIR") / "near_duplicates.sqlite3"


@contextmanager
def lookup_lock(wh: Warehouse):
    """Held while a batch looks up the copies that other batches hold and writes its rows, so
    that two batches ingested at the same time see each other's videos: the second waits for
    the first's rows, then finds its copies among them. A file lock beside the index
    (``fcntl.flock``): it holds the processes of one machine (or of a shared POSIX filesystem
    that supports it), not workers on other machines writing to an object store."""
    path = index_path(wh).with_name("lookup.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _halves(hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.int64), (h >> np.uint64(32)).astype(np.int64)


def _keys(hashes: np.ndarray, kind: int, flips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The keys of ``hashes``: each half with each of ``flips`` applied, and beside each key the
    position of the hash it comes from."""
    lo, hi = _halves(hashes)
    base = np.int64(kind) << np.int64(33)
    q = np.repeat(np.arange(len(lo)), flips.size)
    keys = np.concatenate(
        [(base | (lo[:, None] ^ flips)).ravel(), (base | np.int64(1 << 32) | (hi[:, None] ^ flips)).ravel()]
    )
    return keys, np.concatenate([q, q])


def probe_keys(hashes: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys a lookup of ``hashes`` probes (each half and its one-bit variants) and, beside
    each, the position of the query hash it serves."""
    return _keys(hashes, kind, _FLIPS)


class FingerprintIndex:
    """The hash index of the kept videos of ``wh`` (see the module docstring)."""

    def __init__(self, wh: Warehouse, path: str | os.PathLike | None = None):
        self.wh = wh
        self.path = Path(path) if path is not None else index_path(wh)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self):
        with closing(sqlite3.connect(self.path, timeout=600, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
            db.execute("PRAGMA synchronous=NORMAL")
            yield db

    # --- keeping it in step with the tables ------------------------------------------------

    def _table_state(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Per table: its id and, per batch, a digest of the batch's data files now."""
        state = {}
        for t in _TABLES:
            found = self.wh.batch_files(t)
            table_id, files = found if found is not None else ("", {})
            state[t] = (
                table_id,
                {b: hashlib.blake2b("\n".join(p).encode(), digest_size=12).hexdigest() for b, p in files.items()},
            )
        return state

    def _stale(self, db: sqlite3.Connection, state) -> tuple[list[str], bool]:
        """Batches whose files changed since the index last looked, and whether to rebuild."""
        ids = dict(db.execute("SELECT name, value FROM meta").fetchall())
        seen: dict[str, dict[str, str]] = {t: {} for t in _TABLES}
        for t, b, sig in db.execute("SELECT tbl, batch, sig FROM batch_state"):
            seen.setdefault(t, {})[b] = sig
        if any(ids.get(f"{t}:id", "") != state[t][0] for t in _TABLES):  # new, recreated or lost tables
            return sorted(state["video_fingerprints"][1]), True
        changed = {b for t in _TABLES for b in set(seen[t]) | set(state[t][1]) if seen[t].get(b) != state[t][1].get(b)}
        return sorted(changed), False

    def _record(self, db: sqlite3.Connection, state) -> None:
        db.execute("DELETE FROM batch_state")
        for t, (table_id, sigs) in state.items():
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{t}:id", table_id))
            db.executemany("INSERT INTO batch_state VALUES (?, ?, ?)", [(t, b, sig) for b, sig in sigs.items()])

    def sync(self, log: Callable[[str], None] = lambda m: None) -> list[str]:
        """Bring the index up to date with the tables; returns the batches (re)indexed.

        A batch is re-read when its data files in ``video_fingerprints`` or ``videos`` differ
        from those the index last saw (each batch write replaces them; the Delta log lists them,
        so no data is read to tell)."""
        state = self._table_state()  # read before the data: a later write is picked up next time
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # one process indexes at a time; the others then see its work
            try:
                todo, full = self._stale(db, state)
                if full:
                    log(f"fingerprint index {self.path}: building from the warehouse ({len(todo)} batch(es))")
                    db.execute("DELETE FROM hashes")
                    db.execute("DELETE FROM videos")
                for batch in todo:
                    self._index_batch(db, batch)
                self._record(db, state)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return todo

    def stale(self) -> list[str]:
        """The batches a :meth:`sync` would re-read now (every batch when it would rebuild)."""
        state = self._table_state()
        with self._connect() as db:
            return self._stale(db, state)[0]

    def adopt(self) -> None:
        """Record the tables' current files as indexed, without reading them: for a compaction,
        which rewrites files but not rows (``acav maintain``: only when the index was current)."""
        state = self._table_state()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            self._record(db, state)
            db.execute("COMMIT")

    def _index_batch(self, db: sqlite3.Connection, batch: str) -> None:
        db.execute("UPDATE videos SET live = 0 WHERE batch = ? AND live = 1", (batch,))
        kept = (
            self.wh.scan("videos")
            .filter((pl.col("batch") == batch) & (pl.col("status") == VideoStatus.OK))
            .select("video_id")
        )
        rows = (
            self.wh.scan("video_fingerprints")
            .filter(pl.col("batch") == batch)
            .join(kept, on="video_id", how="semi")
            .select("video_id", "path", "key_hashes", "audio_hashes", "audio_sounding")
            .collect()
        )
        for r in rows.iter_rows(named=True):
            ordinal = db.execute(
                "INSERT INTO videos (batch, video_id, path) VALUES (?, ?, ?)", (batch, r["video_id"], r["path"])
            ).lastrowid
            sound = np.asarray(r["audio_hashes"], np.int64).view(np.uint64)[np.asarray(r["audio_sounding"], bool)]
            for kind, hashes in ((SOUND, sound), (PICTURE, np.asarray(r["key_hashes"], np.int64).view(np.uint64))):
                keys, pos = _keys(hashes, kind, _FLIPS[:1])  # filed under its two halves as they are
                db.executemany(
                    "INSERT OR IGNORE INTO hashes VALUES (?, ?, ?)",
                    zip(keys.tolist(), hashes.view(np.int64)[pos].tolist(), [ordinal] * keys.size),
                )

    def prune(self) -> int:
        """Drop the entries of retired (re-indexed) videos; returns how many videos were dropped."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            dead = [o for (o,) in db.execute("SELECT ordinal FROM videos WHERE live = 0")]
            if dead:
                db.execute("CREATE TEMP TABLE dead (ordinal INTEGER PRIMARY KEY)")
                db.executemany("INSERT INTO dead VALUES (?)", [(o,) for o in dead])
                db.execute("DELETE FROM hashes WHERE ordinal IN (SELECT ordinal FROM dead)")
                db.execute("DELETE FROM videos WHERE live = 0")
            db.execute("COMMIT")
        return len(dead)

    # --- lookups ---------------------------------------------------------------------------

    def votes(
        self,
        hashes: np.ndarray,
        kind: int,
        radius: int,
        *,
        exclude_batch: str | None = None,
        groups: np.ndarray | None = None,
    ) -> dict[int, int]:
        """For each indexed live video (by ordinal) outside ``exclude_batch``: how many of
        ``hashes`` have one of its hashes within ``radius`` bits (among those the probes reach;
        with ``groups``, one per hash: the most of any one group)."""
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        if not hashes.size:
            return {}
        keys, owner = probe_keys(hashes, kind)
        with self._connect() as db:
            db.execute("CREATE TEMP TABLE probe (key INTEGER, q INTEGER)")
            db.executemany("INSERT INTO probe VALUES (?, ?)", zip(keys.tolist(), owner.tolist()))
            # CROSS JOIN fixes the order (SQLite's planner would otherwise scan every hash): each
            # probe key is one B-tree search, whatever the size of the index
            found = db.execute(
                "SELECT p.q, h.hash, h.ordinal FROM probe p CROSS JOIN hashes h ON h.key = p.key "
                "CROSS JOIN videos v ON v.ordinal = h.ordinal WHERE v.live = 1 AND v.batch IS NOT ?",
                (exclude_batch,),
            ).fetchall()
        if not found:
            return {}
        arr = np.asarray(found, dtype=np.int64)
        close = popcount64(arr[:, 1].view(np.uint64) ^ hashes[arr[:, 0]]) <= radius
        return most_per_group(np.unique(arr[close][:, [0, 2]], axis=0), groups)  # (query hash, video) once each

    def videos(self, ordinals: list[int]) -> dict[int, tuple[str, str, str]]:
        """ordinal -> (batch, video_id, path) of indexed videos."""
        if not ordinals:
            return {}
        with self._connect() as db:
            marks = ",".join("?" * len(ordinals))
            return {
                o: (b, v, p)
                for o, b, v, p in db.execute(
                    f"SELECT ordinal, batch, video_id, path FROM videos WHERE ordinal IN ({marks})", ordinals
                )
            }

    def retired_videos(self) -> int:
        """How many re-indexed videos' entries :meth:`prune` would drop."""
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM videos WHERE live = 0").fetchone()[0]

    def live_videos(self) -> int:
        """How many kept videos the index holds."""
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM videos WHERE live = 1").fetchone()[0]
