"""Stage ``downstream_report``: what a curation buys a model trained on it.

Trains the downstream AVTS-style model (:mod:`acav_assets.core.training`) on the curated subset,
a random subset of the same pool and size, the whole pool and, given a truth CSV, the truly
matching clips, per seed, and evaluates each on a held-out labelled split. Returns the rows, a
Markdown table, a picture of the means (training sets x metrics) and the few numbers worth
plotting over time. ``acav bench downstream`` and the asset ``downstream_report`` run this.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from acav_assets.core.media.landing import Landing
from acav_assets.core.stages.report import heatmap_png
from acav_assets.core.training.compare import METRICS, TRAINING_SETS, compare_training_sets, format_comparison
from acav_assets.core.training.probe import ProbeConfig
from acav_assets.core.training.train import TrainConfig
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["DownstreamReport", "downstream_report"]


@dataclass
class DownstreamReport:
    rows: list[dict]  # one per (training set, seed), as compare_training_sets gives them
    markdown: str  # mean ± std per training set, and per seed
    png: bytes  # training sets (rows) x metrics (columns), the mean over seeds, light = high
    means: dict[str, float]  # "<training set>_<metric>": the mean over seeds

    def json_rows(self) -> list[dict]:
        """The rows with NaN as ``None`` (JSON has no NaN)."""
        return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in self.rows]

    def verdict(self) -> str:
        """One line: does the curated subset beat the random one on both probes?"""
        m = self.means
        keys = [f"{s}_{p}" for s in ("curated", "random") for p in ("audio_probe", "visual_probe")]
        if not all(k in m for k in keys):
            return "curated or random missing: no verdict"
        wins = [p for p in ("audio_probe", "visual_probe") if m[f"curated_{p}"] > m[f"random_{p}"]]
        return (
            f"curated beats random on {len(wins)} of 2 probes"
            + (f" ({', '.join(wins)})" if wins else "")
            + f": audio {m['curated_audio_probe']:.3f} vs {m['random_audio_probe']:.3f}, "
            f"visual {m['curated_visual_probe']:.3f} vs {m['random_visual_probe']:.3f}"
        )


def _means(rows: list[dict]) -> dict[str, float]:
    out = {}
    for name in dict.fromkeys(r["training_set"] for r in rows):
        for metric in METRICS:
            values = [float(r[metric]) for r in rows if r["training_set"] == name and not math.isnan(float(r[metric]))]
            if values:
                out[f"{name}_{metric}"] = statistics.fmean(values)
    return out


def _picture(rows: list[dict], means: dict[str, float]) -> bytes:
    names = list(dict.fromkeys(r["training_set"] for r in rows))
    grid = np.array([[means.get(f"{n}_{m}", 0.0) for m in METRICS] for n in names])
    return heatmap_png(grid, cell=32)


def downstream_report(
    wh: Warehouse,
    landing: Landing,
    probe_labels: str | os.PathLike,
    *,
    truth: str | os.PathLike | None = None,
    probe_root: str | os.PathLike | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    sets: Sequence[str] = TRAINING_SETS,
    train: TrainConfig = TrainConfig(),
    probe: ProbeConfig = ProbeConfig(),
    work_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] = lambda m: None,
) -> DownstreamReport:
    """Compare the training sets (see the module docs); ``work_dir`` keeps the exported shards,
    reused by a rerun on the same clips."""
    if not os.path.isfile(probe_labels):
        raise ValueError(f"the held-out labels {probe_labels} do not exist (a CSV name,visual_label,audio_label)")
    if truth and not os.path.isfile(truth):
        raise ValueError(f"the truth CSV {truth} does not exist")
    if not seeds:
        raise ValueError("give at least one seed")
    rows = compare_training_sets(
        wh,
        landing,
        probe_labels,
        truth_csv=truth or None,
        probe_root=probe_root,
        seeds=seeds,
        sets=sets,
        config=train,
        probe=probe,
        work_dir=work_dir,
        progress=progress,
    )
    means = _means(rows)
    title = (
        f"Downstream: {train.steps} steps of {train.batch_size} windows per training set ({train.n_frames} "
        f"pictures of {train.size}x{train.size}, picture stream {train.visual_backbone}), {len(seeds)} seed(s)"
    )
    return DownstreamReport(rows, format_comparison(rows, title=title, per_seed=True), _picture(rows, means), means)
