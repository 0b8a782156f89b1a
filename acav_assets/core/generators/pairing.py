"""What the corpus generators share: drawing paired classes with a broken share, and writing the
videos in worker processes with a ``ground_truth.csv`` beside them."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from acav_assets.core.processes import die_with_parent

__all__ = ["check_corpus_args", "paired_classes", "plan_corpus", "write_corpus"]


def check_corpus_args(n_videos: int, matched_fraction: float, size: tuple[int, int]) -> None:
    if n_videos < 1:
        raise ValueError("n_videos must be positive")
    if not 0 <= matched_fraction <= 1:
        raise ValueError(f"matched_fraction must be in [0, 1], got {matched_fraction}")
    if size[0] % 2 or size[1] % 2:
        raise ValueError(f"frame size must be even, got {size}")


def paired_classes(
    rng: np.random.Generator, n_videos: int, matched_fraction: float, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matched, visual class, audio class) per video: a ``matched_fraction`` share has audio class
    = visual class, the others a *different* class (so ``matched`` is unambiguous)."""
    matched = np.zeros(n_videos, bool)
    matched[rng.permutation(n_videos)[: int(round(matched_fraction * n_videos))]] = True
    vcls = rng.integers(0, n_classes, n_videos)
    acls = np.where(matched, vcls, (vcls + rng.integers(1, n_classes, n_videos)) % n_classes)
    return matched, vcls, acls


def plan_corpus(
    out_dir: str | os.PathLike,
    n_videos: int,
    *,
    prefix: str,
    matched_fraction: float,
    n_classes: int,
    max_classes: int,
    duration_s: tuple[float, float],
    size: tuple[int, int],
    seed: int,
    extra: tuple = (),
) -> tuple[Path, list[tuple]]:
    """Check the arguments, create the folder and draw every video's classes and duration (in
    this order from ``seed``). Returns the folder and one job per video:
    ``(path, visual class, audio class, duration, *extra, [seed, index])``."""
    if not 2 <= n_classes <= max_classes:
        raise ValueError(f"n_classes must be in 2..{max_classes}, got {n_classes}")
    check_corpus_args(n_videos, matched_fraction, size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    _, vcls, acls = paired_classes(rng, n_videos, matched_fraction, n_classes)
    durations = rng.uniform(*duration_s, n_videos)
    return out, [
        (str(out / f"{prefix}_{i:05d}.mp4"), int(vcls[i]), int(acls[i]), float(durations[i]), *extra, [seed, i])
        for i in range(n_videos)
    ]


def write_corpus(out: Path, jobs: Sequence, write_one: Callable, workers: int | None, chunksize: int = 8) -> list:
    """Run ``write_one`` on every job (in worker processes when there are enough), then write
    ``ground_truth.csv`` from the records it returns (dataclasses), in job order."""
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 4:
        with ProcessPoolExecutor(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            records = list(pool.map(write_one, jobs, chunksize=chunksize))
    else:
        records = [write_one(j) for j in jobs]
    with open(out / "ground_truth.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(records[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in records)
    return records
