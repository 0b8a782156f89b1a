"""Committing a selection to the warehouse: its lineage, its run row, its semantic duplicates,
then the subset itself, in that order, and the report beside a local warehouse.

The subset is the commit point. A step that dies after the run row and before the subset leaves
the previous subset with its own run row (the next run warm-starts from it, finding its lineage
by selection id), never a subset without the run that made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.selection.weighting import space_summary
from acav_assets.core.stages.centroids import load_clusterings
from acav_assets.core.stages.curation import Curation, SelectionParams
from acav_assets.core.stages.report import strongest_pair, write_report
from acav_assets.core.warehouse.lineage import lineage_of, lineage_rows, pair_tables, tables_from_lineage
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["CommittedSelection", "commit_selection", "expected_size"]


@dataclass(frozen=True)
class CommittedSelection:
    """What a committed selection looks like, for the materialization's metadata."""

    lineage: pl.DataFrame  # the selection_lineage rows written
    spaces: pl.DataFrame  # per feature space: which pairs carried the correspondence
    top_pairs: pl.DataFrame  # the ten clustering pairs with the most MI
    by_batch: dict[str, int]  # clips of the subset per batch
    expected_size: int  # what the budget asks for, computed apart from the result
    report: dict[str, str] | None  # report.md and heatmap.png beside a local warehouse
    strongest: dict | None  # the pair the heatmap shows


def expected_size(params: SelectionParams, mode: str, n_initial: int, pool_size: int) -> int:
    """The subset size the budget asks for: a warm start keeps the previous clips and adds the
    budget's share of the new ones; an absolute budget is a number of clips."""
    if mode == "incremental":
        return n_initial + int(round(params.budget * pool_size))
    return int(params.budget) if params.budget > 1 else int(round(params.budget * pool_size))


def _lineage(wh: Warehouse, cur: Curation, mode: str) -> pl.DataFrame:
    """The selection's lineage: per clustering pair and cell, the pool's and the subset's clips
    and the cell's share of the MI. A warm start's pool is the extended selection's plus the new
    clips, so the lineage of the run extended is read back by its selection id."""
    sel, pairs = cur.selection, cur.pairs
    clusterings = {c.clustering_id: c for c in load_clusterings(wh)}
    ks = [clusterings[c].k for c in cur.columns]
    subset_labels = np.asarray(cur.subset["clusters"].to_list(), dtype=np.int64).reshape(cur.subset.height, len(ks))
    if mode == "incremental":
        prev = lineage_of(wh, json.loads(cur.run["params"])["after"])
        new_pool = cur.labels[sel.n_initial :] if cur.pool_rows is None else cur.labels[cur.pool_rows[sel.n_initial :]]
        pool = [a + b for a, b in zip(tables_from_lineage(prev, pairs, ks), pair_tables(new_pool, pairs, ks))]
    else:
        pool = pair_tables(cur.labels if cur.pool_rows is None else cur.labels[cur.pool_rows], pairs, ks)
    return lineage_rows(
        pool,
        pair_tables(subset_labels, pairs, ks),
        pairs,
        cur.columns,
        cur.feature_spaces,
        cur.selection_id,
        scores=cur.weighting.scores,
        weights=cur.weighting.weights,
    )


def commit_selection(
    wh: Warehouse, cur: Curation, params: SelectionParams, mode: str, *, report_dir: Path | None = None
) -> CommittedSelection:
    """Write the selection ``cur`` (the run row, semantic duplicates, lineage, then the subset)
    and, with ``report_dir``, its report and heatmap there."""
    lineage = _lineage(wh, cur, mode)
    wh.replace_key("selection_runs", "selection_id", cur.selection_id, [cur.run])  # idempotent per selection
    if cur.duplicates is not None:
        wh.replace_key("semantic_duplicates", "selection_id", cur.selection_id, cur.duplicates)
    wh.overwrite("selection_lineage", lineage)
    wh.overwrite("curated_subset", cur.subset)  # the commit point
    report = strongest = None
    if report_dir is not None:
        report = write_report(wh, report_dir)
        _, strongest = strongest_pair(lineage)
    top = (
        lineage.group_by("feature_space_a", "feature_space_b")
        .agg(pl.col("pair_mi").first())
        .sort("pair_mi", descending=True)
        .head(10)
    )
    return CommittedSelection(
        lineage=lineage,
        spaces=pl.DataFrame(space_summary(cur.weighting.to_records(cur.pairs, cur.feature_spaces))),
        top_pairs=top,
        by_batch=dict(cur.subset.group_by("batch").len().iter_rows()),
        expected_size=expected_size(params, mode, cur.selection.n_initial, cur.selection.pool_size),
        report=report,
        strongest=strongest,
    )
