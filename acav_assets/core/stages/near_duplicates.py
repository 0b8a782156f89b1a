"""Near-duplicate videos within a batch and against every earlier batch (part of stage ``videos``).

Each ``ok`` video of the batch is fingerprinted (:mod:`acav_assets.core.media.fingerprint`); the
fingerprints go to the table ``video_fingerprints``. Candidates come from multi-index hashing
over the sound and keyframe hashes (a lookup probes a fixed number of buckets, whatever the
number of videos): of this batch's videos in memory (faiss ``IndexBinaryMultiHash``), and of
the kept videos of every other batch in the on-disk
:class:`~acav_assets.core.warehouse.fingerprint_index.FingerprintIndex`, so earlier
fingerprints are read only for the candidates it returns. Each candidate pair is verified by
:func:`~acav_assets.core.media.fingerprint.compare`.

Which copy is kept (``status`` stays ``ok``): a video of an earlier batch always (the earliest
landed; it may already be in a curated subset); among copies in this batch, the longest, then
the one with more pixels, then the one landed first (file modification time), then the first
path. (Bitrate was tried as a tie-breaker and dropped: a copy re-encoded with a richer audio
track is larger although its picture is worse.) The others get status
``near_duplicate`` with ``duplicate_of`` = the kept copy's path and the evidence in ``error``.
Batches ingested at the same time take turns from the lookups to the writes
(:func:`~acav_assets.core.warehouse.fingerprint_index.lookup_lock`, held by the ``videos`` asset),
so the second finds its copies among the first's videos.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import functools
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.media.fingerprint import (
    HOP_S,
    WINDOW_S,
    Fingerprint,
    NearDuplicateConfig,
    compare,
    fingerprint_or_reason,
    picture_samples,
    picture_span,
)
from acav_assets.core.media.probe import resolves_inside
from acav_assets.core.processes import die_with_parent
from acav_assets.core.statuses import VideoStatus
from acav_assets.core.warehouse.fingerprint_index import PICTURE, SOUND, FingerprintIndex, most_per_group

__all__ = [
    "NEAR_DUPLICATE",
    "PicturesOnDemand",
    "compare_pair",
    "fingerprint_rows",
    "from_row",
    "local_files",
    "mark_near_duplicates",
]

NEAR_DUPLICATE = VideoStatus.NEAR_DUPLICATE
MIN_VOTES = 0.05  # share of a video's hashes that must hit a candidate before it is verified ...
# ... counted over at most one default window's hashes: an excerpt shares a few seconds of a long
# video's sound, whose whole-file hashes (nd_window_s 0) are many
_VOTED_SPAN = int(round((WINDOW_S - 1.0) / HOP_S)) + 1  # 1 s windows every HOP_S over WINDOW_S


def _enough_votes(votes: int, hashes: int) -> bool:
    return votes >= MIN_VOTES * min(hashes, _VOTED_SPAN)


def fingerprint_rows(
    rows: list[dict],
    landing_root: str | Path,
    *,
    workers: int = 1,
    window_s: float = WINDOW_S,
    pictures_on_demand: bool = False,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> list[dict]:
    """``video_fingerprints`` rows for the ``ok`` videos among ``rows`` (a video that cannot be
    fingerprinted is logged and left out of near-duplicate detection). Each covers the centre
    ``window_s`` seconds of its video (0: all of it); with ``pictures_on_demand`` only videos
    without usable sound have picture samples (see :func:`fingerprint_file`)."""
    todo = [r for r in rows if r["status"] == VideoStatus.OK]
    paths = [str(Path(landing_root) / r["path"]) for r in todo]
    task = functools.partial(fingerprint_or_reason, window_s=window_s, pictures_on_demand=pictures_on_demand)
    for r, p in zip(todo, paths):
        r["landed_at"] = os.stat(p).st_mtime if os.path.exists(p) else float("inf")  # not a column: dropped on write
    results = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(paths) >= 8:
            pool = stack.enter_context(
                cf.ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=die_with_parent,
                    initargs=(os.getpid(),),
                )
            )
            prints = pool.map(task, paths, [r.get("duration_s") for r in todo], chunksize=4)
        else:
            prints = map(task, paths, [r.get("duration_s") for r in todo])
        for i, res in enumerate(prints, 1):
            results.append(res)
            if progress:
                progress(i, len(paths))
    out = []
    for r, fp in zip(todo, results):
        if isinstance(fp, str):
            log(f"{r['path']}: no fingerprint ({fp}); not checked for near-duplicates")
            continue
        out.append(
            {
                "batch": r["batch"],
                "video_id": r["video_id"],
                "path": r["path"],
                "key_times": fp.frame_times.tolist(),
                "key_hashes": fp.frame_hashes.view(np.int64).tolist(),
                "key_vectors": fp.frame_vectors.reshape(-1).tolist(),
                "audio_hashes": fp.audio_hashes.view(np.int64).tolist(),
                "audio_sounding": fp.audio_sounding.tolist(),
                "audio_start_s": fp.audio_start_s,
                # not columns (dropped on write): the sound on the grids between, for this batch's lookups
                "audio_offgrid": fp.audio_offgrid,
                "audio_offgrid_sounding": fp.audio_offgrid_sounding,
                "audio_offgrid_s": fp.audio_offgrid_s,
            }
        )
    return out


def from_row(row: dict) -> Fingerprint:
    return Fingerprint(
        np.asarray(row["key_times"], np.float64),
        np.asarray(row["key_hashes"], np.int64).view(np.uint64),
        np.asarray(row["key_vectors"], np.float32).reshape(-1, 63),
        np.asarray(row["audio_hashes"], np.int64).view(np.uint64),
        np.asarray(row["audio_sounding"], bool),
        float(row.get("audio_start_s") or 0.0),
        row.get("audio_offgrid"),
        row.get("audio_offgrid_sounding"),
        row.get("audio_offgrid_s"),
    )


class _HashIndex:
    """Hashes (uint64) of many videos; ``votes(query)`` counts, per video, the query hashes that
    have a hash of that video within ``radius`` bits."""

    def __init__(self, radius: int):
        import faiss

        # 2 tables of 32 bits, probing buckets up to 1 bit away: a lookup visits 2 x 33 buckets
        # that stay nearly empty however many videos are indexed (2^32 buckets each), so its cost
        # does not grow with the warehouse. It finds every code within 3 bits (more when the
        # flips fall in one half): a copy shares enough nearly identical windows to be voted
        # for, and the pair is then verified with the full thresholds (compare)
        self.index = faiss.IndexBinaryMultiHash(64, 2, 32)
        self.index.nflip = 1
        self.owner: list[int] = []
        self._owners = np.zeros(0, np.int64)
        self.radius = radius

    def add(self, hashes: np.ndarray, owner: int) -> None:
        if hashes.size:
            self.index.add(np.ascontiguousarray(hashes, dtype=np.uint64).view(np.uint8).reshape(-1, 8))
            self.owner.extend([owner] * hashes.size)

    def freeze(self) -> np.ndarray:
        """The owner of every indexed hash as an array (built once, after the adds)."""
        if len(self._owners) != len(self.owner):
            self._owners = np.asarray(self.owner)
        return self._owners

    def votes(self, hashes: np.ndarray, groups: np.ndarray | None = None) -> dict[int, int]:
        """Per video, the query hashes with a hash of it within the radius (with ``groups``, one
        per query hash: the most of any one group)."""
        if not hashes.size or not self.owner:
            return {}
        lims, _, ids = self.index.range_search(
            np.ascontiguousarray(hashes, dtype=np.uint64).view(np.uint8).reshape(-1, 8), self.radius + 1
        )
        owners = self.freeze()
        found = [(q, o) for q in range(hashes.size) for o in set(owners[ids[lims[q] : lims[q + 1]]].tolist())]
        return most_per_group(np.asarray(found, np.int64).reshape(-1, 2), groups)


def _keep_order(row: dict) -> tuple:
    """Sort key: the copy to keep first."""
    dur = round(row.get("duration_s") or 0.0, 1)
    pixels = (row.get("width") or 0) * (row.get("height") or 0)
    return (-dur, -pixels, row.get("landed_at", float("inf")), row["path"])


def _lookup_hashes(fp: Fingerprint) -> tuple[np.ndarray, int, np.ndarray, int]:
    """What a video is looked up by: its sounding windows' hashes on each of its grids (the group
    of each hash says which grid), else (no sound) its picture samples'; and how many hashes
    one group has (what the votes are counted against)."""
    sounding = fp.audio_hashes[fp.audio_sounding]
    if not sounding.size:
        return fp.frame_hashes, PICTURE, np.zeros(fp.frame_hashes.size, np.int64), fp.frame_hashes.size
    grids = [h[snd] for _, h, snd in fp.sound_grids()]
    groups = np.concatenate([np.full(h.size, g, np.int64) for g, h in enumerate(grids)])
    return np.concatenate(grids), SOUND, groups, sounding.size


def _earlier_candidates(
    index: FingerprintIndex, here: list[tuple[dict, Fingerprint]], batch: str | None, config: NearDuplicateConfig
) -> tuple[list[tuple[dict, Fingerprint]], list[dict[int, int]]]:
    """The kept videos of other batches that some video of ``here`` votes for (looked up in the
    index; only their fingerprints are read), and each ``here`` video's votes by position in
    that list."""
    per_video, wanted = [], set()
    for _, fp in here:
        hashes, kind, groups, per_group = _lookup_hashes(fp)
        radius = config.audio_bits if kind == SOUND else config.lookup_bits
        votes = {
            o: v
            for o, v in index.votes(hashes, kind, radius, exclude_batch=batch, groups=groups).items()
            if _enough_votes(v, per_group)
        }
        per_video.append(votes)
        wanted.update(votes)
    if not wanted:
        return [], per_video
    where = index.videos(sorted(wanted))  # ordinal -> (batch, video_id, path)
    rows = {
        (r["batch"], r["video_id"]): r
        for r in index.wh.scan("video_fingerprints")
        .filter(
            pl.col("batch").is_in(sorted({b for b, _, _ in where.values()}))
            & pl.col("video_id").is_in(sorted({v for _, v, _ in where.values()}))
        )
        .collect()
        .iter_rows(named=True)
    }
    # earliest batch first: the copy kept when several earlier videos match
    ordinals = sorted((o for o in where if where[o][:2] in rows), key=lambda o: (where[o][0], where[o][2]))
    position = {o: i for i, o in enumerate(ordinals)}
    prior = [(rows[where[o][:2]], from_row(rows[where[o][:2]])) for o in ordinals]
    return prior, [{position[o]: v for o, v in votes.items() if o in position} for votes in per_video]


def local_files(
    landing_root: str | Path,
    allowed_roots: tuple[str, ...] = (),
    fetch: Callable[[str], str | os.PathLike | None] | None = None,
) -> Callable[[dict], str | None]:
    """Where a fingerprint row's video can be read on this machine: under ``landing_root``, when it
    is there and resolves inside the landing area or an allowed folder; else what ``fetch`` (the
    row's landing-relative path -> a local copy, or None) gives: an earlier batch of an
    object-store landing is not staged here any more. None: it cannot be read."""
    roots = (str(Path(landing_root).resolve()), *allowed_roots)

    def locate(row: dict) -> str | None:
        path = Path(landing_root) / row["path"]
        if path.is_file() and resolves_inside(path, roots):
            return str(path)
        copy = fetch(row["path"]) if fetch is not None and not path.exists() else None
        return os.fspath(copy) if copy is not None else None

    return locate


def _with_samples(fp: Fingerprint, path: str | None, times: np.ndarray) -> Fingerprint | None:
    """``fp`` with its picture sampled from ``path`` at ``times`` (None: no file, or it cannot be
    read)."""
    if path is None:
        return None
    try:
        t, h, v = picture_samples(path, times)
    except (ValueError, OSError):
        return None
    return dataclasses.replace(fp, frame_times=t, frame_hashes=h, frame_vectors=v)


class PicturesOnDemand:
    """The pictures of videos fingerprinted without them (``pictures_on_demand``: their sound was
    usable), sampled from their files when a comparison needs them, at most once per video: over
    the centre ``PICTURE_SPAN_S`` of their sound's window (where :func:`fingerprint_file` takes
    them when the sound covers the video)."""

    def __init__(self, locate: Callable[[dict], str | None]):
        self.locate, self.sampled = locate, {}

    def __call__(self, item: tuple[dict, Fingerprint]) -> tuple[dict, Fingerprint]:
        row, fp = item
        if fp.frame_times.size:
            return item
        key = (row["batch"], row["path"])
        if key not in self.sampled:
            centre = np.floor((fp.audio_start_s + ((fp.audio_hashes.size - 1) * HOP_S + 1.0) / 2) / HOP_S) * HOP_S
            times = picture_span(centre)
            self.sampled[key] = _with_samples(fp, self.locate(row), times[times >= 0])
        return (row, self.sampled[key]) if self.sampled[key] is not None else item


def compare_pair(
    a: tuple[dict, Fingerprint],
    b: tuple[dict, Fingerprint],
    config: NearDuplicateConfig,
    locate: Callable[[dict], str | None] | None,
    on_demand: PicturesOnDemand | None = None,
) -> tuple[bool, dict]:
    """:func:`compare` of two (row, fingerprint) pairs, reading pictures from the files
    (``locate``) where the stored samples cannot decide: when the sound agrees, or one side's
    sound is not usable (the picture alone decides), and a side has no samples, first the
    pictures it was fingerprinted without (``on_demand``); then, when the sound agrees but the
    samples still do not overlap at its alignment (a short excerpt of a long video: each video's
    samples lie in its own centre), the video that holds the other's sample times at those times."""
    ok, ev = compare(a[1], b[1], config)
    silent = ev["audio_agreement"] is None  # one side's sound is not usable: the picture alone
    if ok or locate is None or ev["visual_agreement"] is not None:
        return ok, ev
    if not silent and ev["audio_agreement"] < config.audio_match:
        return ok, ev
    if on_demand is not None and not (a[1].frame_times.size and b[1].frame_times.size):
        filled_a, filled_b = on_demand(a), on_demand(b)
        if filled_a[1] is not a[1] or filled_b[1] is not b[1]:
            a, b = filled_a, filled_b
            ok, ev = compare(a[1], b[1], config)
            ev["picture_sampled"] = "on demand"
            if ok or ev["visual_agreement"] is not None:
                return ok, ev
    if silent:
        return ok, ev
    shift = ev["shift_s"]  # b's clock -> a's clock
    for (x_row, x_fp), (_, y_fp), to_x in ((a, b, shift), (b, a, -shift)):
        times = y_fp.frame_times[y_fp.frame_informative] + to_x  # the other's informative samples, on x's clock
        times = times[times >= 0]
        if times.size < config.min_frames:
            continue
        x_now = _with_samples(x_fp, locate(x_row), times)
        if x_now is None or x_now.frame_times.size < config.min_frames:
            continue  # unreadable, or the times lie past its end: the other way round
        ok, ev = compare(x_now, y_fp, config) if x_fp is a[1] else compare(y_fp, x_now, config)
        ev["picture_sampled"] = "on demand"
        return ok, ev
    return ok, ev


def mark_near_duplicates(
    rows: list[dict],
    fingerprints: list[dict],
    earlier: FingerprintIndex | None = None,
    config: NearDuplicateConfig = NearDuplicateConfig(),
    locate: Callable[[dict], str | None] | None = None,
) -> list[dict]:
    """Mark the batch's near-duplicate videos in ``rows`` (its ``videos`` rows). ``fingerprints``
    are this batch's ``video_fingerprints`` rows; ``earlier`` the index of the kept videos of
    the other batches (None: this batch alone); ``locate`` where a video's file can be read
    (:func:`local_files`; None: only the stored samples are compared). Returns the pairs found
    (kept path, duplicate path, evidence)."""
    here = [(r, from_row(r)) for r in fingerprints]
    batch = rows[0]["batch"] if rows else None
    prior, prior_votes = (
        _earlier_candidates(earlier, here, batch, config) if earlier is not None and here else ([], [{} for _ in here])
    )
    everyone = prior + here  # index i < len(prior): another batch's kept video
    audio_idx, key_idx = _HashIndex(config.audio_bits), _HashIndex(config.lookup_bits)
    for i, (_, fp) in enumerate(here):
        audio_idx.add(fp.audio_hashes[fp.audio_sounding], i)
        key_idx.add(fp.frame_hashes, i)
    audio_idx.freeze()  # part of building the index, not of each lookup
    key_idx.freeze()
    parent = list(range(len(everyone)))
    on_demand = PicturesOnDemand(locate) if locate is not None else None

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    evidence: dict[tuple[int, int], dict] = {}
    for k, (_, fp) in enumerate(here):
        j = len(prior) + k
        hashes, kind, groups, per_group = _lookup_hashes(fp)
        local = (audio_idx if kind == SOUND else key_idx).votes(hashes, groups)
        votes = {**prior_votes[k], **{len(prior) + i: v for i, v in local.items() if _enough_votes(v, per_group)}}
        for i, v in sorted(votes.items()):
            if i == j or find(i) == find(j):
                continue
            ok, ev = compare_pair(everyone[i], here[k], config, locate, on_demand)
            if ok:
                evidence[(i, j)] = ev
                parent[find(j)] = find(i)
    by_path = {r["path"]: r for r in rows}
    families: dict[int, list[int]] = {}
    for i in range(len(everyone)):
        families.setdefault(find(i), []).append(i)
    pairs = []
    for members in families.values():
        if len(members) < 2:
            continue
        olds = [i for i in members if i < len(prior)]
        news = sorted(
            (i for i in members if i >= len(prior)), key=lambda i: _keep_order(by_path[everyone[i][0]["path"]])
        )
        keeper = min(olds) if olds else news[0]
        kept_path = everyone[keeper][0]["path"]
        for i in news:
            if i == keeper:
                continue
            ev = (
                evidence.get((keeper, i))
                or evidence.get((i, keeper))
                or next((e for (a, b), e in evidence.items() if i in (a, b)), {})
            )
            row = by_path[everyone[i][0]["path"]]
            row["status"], row["duplicate_of"] = NEAR_DUPLICATE, kept_path
            row["error"] = (
                f"near-duplicate of {kept_path} (kept: "
                f"{'an earlier batch' if olds else 'longest, then largest, then landed first'}; "
                f"sound agreement {ev.get('audio_agreement')}, picture {ev.get('visual_agreement')}, "
                f"shift {ev.get('shift_s')} s)"
            )
            pairs.append({"kept": kept_path, "near_duplicate": row["path"], **ev})
    return pairs
