"""Synchronisation estimates measured on a corpus with known offsets (``generators.sync_events``).

Three questions, each on its own clips:

- does the score separate shifted clips from in-sync ones? ROC AUC of ``1 - sync_score`` with the
  clips whose sound is shifted by 0.4 s or more as positives and the in-sync clips with events as
  negatives (an unknown answer counts as 0.5: it cannot tell);
- is the offset right? The share of shifted clips whose estimated offset is within
  :data:`OFFSET_TOLERANCE_S` of the truth, sign included (unknown counts as wrong);
- does it abstain where it should? The share of event-less clips answered None (unknown).

Plus the CPU seconds each estimate took, and the same numbers per kind of clip (irregular
events, near-periodic events) since a period makes a shift by about one period ambiguous.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.sync.base import SyncEstimate, SyncEstimator

__all__ = [
    "OFFSET_TOLERANCE_S",
    "SHIFT_MIN_S",
    "ClipResult",
    "evaluate_sync",
    "format_sync_table",
    "mean_summary",
    "read_sync_ground_truth",
    "roc_auc",
    "run_sync",
    "summarise",
    "sync_corpora",
    "sync_table",
]

OFFSET_TOLERANCE_S = 0.1  # an estimated offset this close to the truth is right
SHIFT_MIN_S = 0.4  # clips shifted this far or more are the positives


@dataclass(frozen=True)
class ClipResult:
    file: str
    kind: str
    has_events: bool
    true_offset_s: float
    estimate: SyncEstimate
    cpu_s: float  # process CPU seconds of the estimate (decode included)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` for ``positive`` labels: the Mann-Whitney statistic
    (the chance that a random positive scores above a random negative, ties counting half),
    computed from average ranks. None when one class is empty."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    i = 0
    while i < scores.size:  # average ranks over ties
        j = i
        while j + 1 < scores.size and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def read_sync_ground_truth(folder: str | os.PathLike) -> list[dict]:
    """The rows of ``ground_truth.csv`` of a sync corpus, typed."""
    rows = []
    with open(Path(folder) / "ground_truth.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    **r,
                    "has_events": r["has_events"] == "True",
                    "shifted": r["shifted"] == "True",
                    "offset_s": float(r["offset_s"]),
                    "start_s": float(r["start_s"]),
                    "end_s": float(r["end_s"]),
                }
            )
    return rows


def run_sync(folder: str | os.PathLike, estimator: SyncEstimator) -> list[ClipResult]:
    """Run ``estimator`` on every clip window of the corpus in ``folder``, timing each."""
    out = []
    for row in read_sync_ground_truth(folder):
        t = time.process_time()
        est = estimator.estimate(Path(folder) / row["file"], row["start_s"], row["end_s"])
        cpu = time.process_time() - t
        out.append(ClipResult(row["file"], row["kind"], row["has_events"], row["offset_s"], est, cpu))
    return out


def summarise(results: list[ClipResult], kinds: tuple[str, ...] | None = None) -> dict:
    """AUC, offset accuracy, null share and counts over ``results`` (clips of ``kinds`` only, when
    given; event-less clips are always counted for the null share)."""
    events = [r for r in results if r.has_events and (kinds is None or r.kind in kinds)]
    eventless = [r for r in results if not r.has_events]
    shifted = [r for r in events if abs(r.true_offset_s) >= SHIFT_MIN_S]
    in_sync = [r for r in events if r.true_offset_s == 0]
    pool = shifted + in_sync
    scores = np.array([1 - r.estimate.sync_score if r.estimate.known else 0.5 for r in pool])
    auc = roc_auc(scores, np.array([r in shifted for r in pool])) if pool else None

    def right(r: ClipResult) -> bool:
        return r.estimate.known and abs(r.estimate.offset_s - r.true_offset_s) <= OFFSET_TOLERANCE_S

    errors = [r.estimate.offset_s - r.true_offset_s for r in events if right(r)]
    return {
        "auc": auc,
        "offset_accuracy": float(np.mean([right(r) for r in shifted])) if shifted else None,
        "in_sync_accuracy": float(np.mean([right(r) for r in in_sync])) if in_sync else None,
        "null_share": float(np.mean([not r.estimate.known for r in eventless])) if eventless else None,
        "answered_share": float(np.mean([r.estimate.known for r in events])) if events else None,
        "mean_error_s": float(np.mean(errors)) if errors else None,  # signed, over right answers: the bias
        "n_shifted": len(shifted),
        "n_in_sync": len(in_sync),
        "n_eventless": len(eventless),
        "cpu_s_per_clip": float(np.mean([r.cpu_s for r in results])) if results else 0.0,
    }


def evaluate_sync(
    folder: str | os.PathLike, estimator: SyncEstimator | None = None, kinds: tuple[str, ...] | None = None
) -> dict:
    """Run ``estimator`` (default: the weight-free onset-motion one) over the corpus in ``folder``
    and :func:`summarise` it; the per-clip results are under ``"clips"``."""
    if estimator is None:
        from acav_assets.core.sync.onset_motion import OnsetMotionEstimator

        estimator = OnsetMotionEstimator()
    results = run_sync(folder, estimator)
    return {**summarise(results, kinds), "clips": results}


def mean_summary(summaries: list[dict]) -> dict:
    """The mean of several summaries' rates (over those that have one) and the sum of their counts."""
    out = {}
    for key in summaries[0]:
        if key == "clips":
            continue
        values = [s[key] for s in summaries if s[key] is not None]
        if key.startswith("n_"):
            out[key] = int(sum(values))
        else:
            out[key] = float(np.mean(values)) if values else None
    return out


def format_sync_table(rows: list[tuple[str, dict]]) -> str:
    """A Markdown table of ``(label, summarise(...))`` rows."""

    def cell(v, fmt="{:.3f}"):
        return "-" if v is None else fmt.format(v)

    lines = [
        "| corpus | AUC | offset ±0.1 s (shifted) | offset ±0.1 s (in sync) | null (event-less) "
        "| answered (events) | bias s | shifted / in sync / event-less | CPU s / clip |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in rows:
        lines.append(
            f"| {label} | {cell(s['auc'])} | {cell(s['offset_accuracy'])} | {cell(s['in_sync_accuracy'])} "
            f"| {cell(s['null_share'])} | {cell(s['answered_share'])} | {cell(s['mean_error_s'], '{:+.3f}')} "
            f"| {s['n_shifted']} / {s['n_in_sync']} / {s['n_eventless']} | {s['cpu_s_per_clip']:.3f} |"
        )
    return "\n".join(lines)


def sync_corpora(
    root: str | os.PathLike, videos: int, seeds: list[int], size: tuple[int, int], log=print
) -> list[Path]:
    """The sync-events corpus of each seed under ``root`` (written when not there yet)."""
    from acav_assets.core.generators.sync_events import write_sync_event_videos

    folders = []
    for seed in seeds:
        folder = Path(root) / f"sync_{seed}_{videos}_{size[0]}x{size[1]}"
        if not (folder / "ground_truth.csv").is_file():
            t = time.perf_counter()
            write_sync_event_videos(folder, videos, size=size, seed=seed)
            log(f"seed {seed}: wrote {videos} videos in {time.perf_counter() - t:.0f} s")
        folders.append(folder)
    return folders


def sync_table(folders: list[Path], seeds: list[int], estimator: SyncEstimator | None = None) -> str:
    """The benchmark's table: per seed, their mean, and irregular and near-periodic events pooled."""
    if estimator is None:
        from acav_assets.core.sync.onset_motion import OnsetMotionEstimator

        estimator = OnsetMotionEstimator()
    rows, results = [], []
    for seed, folder in zip(seeds, folders):
        res = run_sync(folder, estimator)
        results += res
        rows.append((f"seed {seed}", summarise(res)))
    rows.append(("mean over seeds", mean_summary([s for _, s in rows])))
    rows.append(("irregular events, pooled", summarise(results, ("events",))))
    rows.append(("near-periodic events, pooled", summarise(results, ("periodic",))))
    return format_sync_table(rows)
