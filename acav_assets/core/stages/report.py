"""Answering "why is this clip in, and that one out?" and "which content dominates?" from the
warehouse: clip explanations, a summary report with a heatmap of the strongest clustering pair,
and earlier subsets through Delta time travel.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.selection import marginal_effects, resolve_pairs
from acav_assets.core.selection.weighting import space_summary
from acav_assets.core.stages.labels import label_matrix
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["explain_clip", "heatmap_png", "latest_run", "subset_as_of", "write_report"]


def latest_run(wh: Warehouse) -> dict:
    """The ``selection_runs`` row of the current ``curated_subset``."""
    subset = wh.scan("curated_subset").select("selection_id").head(1).collect()
    if subset.height == 0:
        raise ValueError("curated_subset is empty: materialize curated_subset first")
    sid = subset["selection_id"][0]
    runs = wh.scan("selection_runs").filter(pl.col("selection_id") == sid).collect()
    if runs.height == 0:
        raise ValueError(f"selection run {sid} is not recorded in selection_runs")
    return runs.sort("created_at").row(-1, named=True)


def run_pair_weights(run: dict) -> np.ndarray | None:
    """The pair weights a selection run used (None for runs recorded before pair weighting)."""
    raw = run.get("pair_weights")
    return np.array([r["weight"] for r in json.loads(raw)], dtype=np.float64) if raw else None


def explain_clip(wh: Warehouse, clip_id: str) -> dict:
    """Facts about one clip and the current selection.

    Selected: its rank, step, gain when chosen, its clusters, the objective it would cost to
    take it out now, and the lineage cells (one per pair) it sits in, strongest first.
    Not selected: its clusters, the objective it would add now, and the bar it misses: the
    smallest loss among the selected clips (what the weakest selected clip is worth).
    Both: the agreement refinement of the run (pairs scored, clips exchanged); a selected clip
    also says whether the MI search chose it or the refinement exchanged it in, and its agreement.
    """
    clip = wh.scan("clips").filter(pl.col("clip_id") == clip_id).collect()
    if clip.height == 0:
        raise ValueError(f"no clip {clip_id!r} in the clips table")
    info = clip.row(0, named=True)
    run = latest_run(wh)
    params = json.loads(run["params"])
    clip_ids, labels, _, _ = label_matrix(wh, run["clustering_ids"])
    found = clip_ids.rows_of([clip_id])
    subset = wh.read("curated_subset").sort("rank")
    out = {
        "clip_id": clip_id,
        "path": info["path"],
        "batch": info["batch"],
        "window": [info["start_s"], info["end_s"]],
        "selection_id": run["selection_id"],
        "pairing": params["pairing"],
        "objective": run["objective"],
        # the label-free refinement after the MI search (runs recorded before it existed: none)
        "refinement": json.loads(run.get("refinement") or '{"rule": "none"}'),
        "sync": _sync_of(wh, clip_id),
    }
    if out["sync"] and out["sync"]["out_of_sync"] and params.get("sync_filter", "keep") == "exclude":
        out.update(
            selected=False,
            reason="out of sync: its sound is shifted against its picture (clip_sync), so "
            "the selection left it out of the pool (sync_filter exclude)",
        )
        return out
    if found.size == 0:
        out.update(
            selected=False,
            reason="the clip has no cluster assignment for every clustering of the run "
            "(not embedded, or its batch was not assigned)",
        )
        return out
    modal = [fs.split("/", 1)[0] for fs in run["feature_spaces"]]
    pairs = resolve_pairs(params["pairing"], len(run["clustering_ids"]), modal)
    weights = run_pair_weights(run)
    sel_rows = clip_ids.rows_of(subset["clip_id"])
    row = int(found[0])
    out["clusters"] = {fs: int(labels[row, j]) for j, fs in enumerate(run["feature_spaces"])}
    chosen = subset.filter(pl.col("clip_id") == clip_id)
    if chosen.height:
        r = chosen.row(0, named=True)
        objective, loss, _ = marginal_effects(labels, sel_rows, pairing=pairs, pair_weights=weights)
        pos = int(np.flatnonzero(sel_rows == row)[0])
        lineage = wh.read("selection_lineage").filter(pl.col("selection_id") == run["selection_id"])
        cells = []
        for p, (i, j) in enumerate(pairs):
            if weights is not None and weights[p] == 0:
                continue  # a pair the selection did not count
            cell = lineage.filter(
                (pl.col("pair_index") == p)
                & (pl.col("cluster_a") == int(labels[row, i]))
                & (pl.col("cluster_b") == int(labels[row, j]))
            )
            if cell.height:
                c = cell.row(0, named=True)
                cells.append(
                    {
                        "pair": [c["feature_space_a"], c["feature_space_b"]],
                        "cell": [c["cluster_a"], c["cluster_b"]],
                        "selected_in_cell": c["selected_count"],
                        "pool_in_cell": c["pool_count"],
                        "mi_contribution": c["mi_contribution"],
                    }
                )
        cells.sort(key=lambda c: -c["mi_contribution"])
        out.update(
            selected=True,
            rank=r["rank"],
            step=r["step"],
            gain_when_chosen=r["gain"],
            loss_if_removed_now=float(loss[pos]),
            cells=cells[:5],
            chosen_by=r.get("chosen_by") or "mi",
            agreement=r.get("agreement"),
        )
    else:
        objective, loss, gain = marginal_effects(labels, sel_rows, [row], pairing=pairs, pair_weights=weights)
        weakest = int(np.argmin(loss))
        out.update(
            selected=False,
            gain_if_added_now=float(gain[0]),
            bar_to_beat=float(loss[weakest]),
            weakest_selected=clip_ids.ids_at([sel_rows[weakest]])[0],
        )
    return out


def _sync_of(wh: Warehouse, clip_id: str) -> dict | None:
    """The clip's ``clip_sync`` row (offset, score, flag, why unknown), or None before there is one."""
    got = wh.scan("clip_sync").filter(pl.col("clip_id") == clip_id).collect()
    if got.height == 0:
        return None
    r = got.row(0, named=True)
    return {k: r[k] for k in ("offset_s", "sync_score", "out_of_sync", "n_events", "method", "reason")}


# --- heatmap PNG (no plotting dependency: numpy + zlib) -----------------------------------

_ANCHORS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)


def _colormap(v: np.ndarray) -> np.ndarray:
    x = np.clip(v, 0, 1) * (len(_ANCHORS) - 1)
    lo = np.floor(x).astype(int).clip(0, len(_ANCHORS) - 2)
    t = (x - lo)[..., None]
    return (_ANCHORS[lo] * (1 - t) + _ANCHORS[lo + 1] * t).astype(np.uint8)


def heatmap_png(matrix: np.ndarray, cell: int | None = None) -> bytes:
    """A PNG of ``matrix`` (rows × columns), each value a ``cell``-pixel square (default: about
    256 pixels across), viridis-like colours from low to high."""
    m = np.asarray(matrix, dtype=np.float64)
    cell = cell or max(8, 256 // max(m.shape))
    span = m.max() - m.min()
    img = _colormap((m - m.min()) / span if span > 0 else np.zeros_like(m))
    img = np.repeat(np.repeat(img, cell, axis=0), cell, axis=1)
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def strongest_pair(lineage: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """The cells of the counted pair (weight > 0) with the highest MI, and that pair's description."""
    if "pair_weight" in lineage.columns and (lineage["pair_weight"].fill_null(1.0) > 0).any():
        lineage = lineage.filter(pl.col("pair_weight").fill_null(1.0) > 0)
    best = (
        lineage.group_by("pair_index")
        .agg(pl.col("pair_mi").first())
        .sort("pair_mi", descending=True)
        .row(0, named=True)
    )
    cells = lineage.filter(pl.col("pair_index") == best["pair_index"])
    first = cells.row(0, named=True)
    return cells, {
        "pair_index": best["pair_index"],
        "pair_mi": best["pair_mi"],
        "feature_space_a": first["feature_space_a"],
        "feature_space_b": first["feature_space_b"],
    }


def write_report(wh: Warehouse, out_dir: str | os.PathLike) -> dict[str, str]:
    """Summary tables (markdown) and the heatmap of the strongest pair (PNG) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = latest_run(wh)
    subset = wh.read("curated_subset")
    lineage = wh.read("selection_lineage").filter(pl.col("selection_id") == run["selection_id"])
    cells, pair = strongest_pair(lineage)
    ka, kb = int(cells["cluster_a"].max()) + 1, int(cells["cluster_b"].max()) + 1
    counts = np.zeros((ka, kb))
    counts[cells["cluster_a"].to_numpy(), cells["cluster_b"].to_numpy()] = cells["selected_count"].to_numpy()
    png = out / "heatmap.png"
    png.write_bytes(heatmap_png(counts))
    pairs = (
        lineage.group_by("pair_index", "feature_space_a", "feature_space_b")
        .agg(pl.col("pair_mi").first(), pl.col("pair_score").first(), pl.col("pair_weight").first())
        .sort(pl.col("pair_weight").fill_null(1.0), "pair_mi", descending=True)
    )
    top_cells = lineage.sort("mi_contribution", descending=True).head(15)
    by_batch = subset.group_by("batch").len().sort("batch")
    lines = [
        f"# Curated subset {run['selection_id']}",
        "",
        f"{subset.height} of {run['pool_size']} clips, objective {run['objective']:.4f} nats, "
        f"created {run['created_at']}, batches {', '.join(run['batches'])}",
        "",
        f"Parameters: `{run['params']}`",
        "",
        "## Clips per batch",
        "",
        "| batch | selected |",
        "|---|---|",
    ]
    lines += [f"| {b} | {n} |" for b, n in by_batch.iter_rows()]
    lines += [
        "",
        "## Clustering pairs (what the objective averages, by weight)",
        "",
        f"Pair weighting: {run.get('weighting') or 'plain (recorded before pair weighting)'}. The score is the "
        "pool's adjusted MI of the pair (0 = chance), measured without labels before selecting; pairs of "
        "weight 0 carried no correspondence and did not count.",
        "",
        "| audio/first | visual/second | pool score | weight | subset MI (nats) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {a} | {b} | {'-' if s is None else f'{s:.4f}'} | {1.0 if w is None else w:g} | {mi:.4f} |"
        for _, a, b, mi, s, w in pairs.iter_rows()
    ]
    recs = json.loads(run["pair_weights"]) if run.get("pair_weights") else []
    if recs:
        lines += [
            "",
            "## Feature spaces (which carried correspondence in the pool)",
            "",
            "| feature space | best pair score | share of the weight |",
            "|---|---|---|",
        ]
        for r in space_summary(recs):
            best = "-" if r["best_score"] is None else f"{r['best_score']:.4f}"
            lines.append(f"| {r['feature_space']} | {best} | {r['weight_share']:.2f} |")
    lines += [
        "",
        "## Cells contributing most (which kinds of content dominate)",
        "",
        "| pair | cell | selected | pool | contribution |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['feature_space_a']} × {r['feature_space_b']} | ({r['cluster_a']}, {r['cluster_b']}) | "
        f"{r['selected_count']} | {r['pool_count']} | {r['mi_contribution']:.4f} |"
        for r in top_cells.iter_rows(named=True)
    ]
    lines += [
        "",
        f"![selected clips per cell of the strongest pair]({png.name})",
        "",
        f"Heatmap: rows {pair['feature_space_a']} clusters, columns {pair['feature_space_b']} clusters, "
        f"colour = selected clips in the cell (pair MI {pair['pair_mi']:.4f}).",
    ]
    md = out / "report.md"
    md.write_text("\n".join(lines) + "\n")
    return {"report": str(md), "heatmap": str(png)}


def subset_as_of(wh: Warehouse, as_of: str | int) -> tuple[pl.DataFrame, int | str]:
    """``curated_subset`` as it was at a Delta version (int) or a time (ISO 8601)."""
    if isinstance(as_of, str) and as_of.strip().lstrip("-").isdigit():
        as_of = int(as_of)
    if isinstance(as_of, str):
        try:
            stamp = datetime.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"--as-of must be a table version (integer) or an ISO time, got {as_of!r}") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)  # a time without a zone is UTC, as the Delta log's
        first = wh.first_commit_time("curated_subset")
        if first is None:
            raise ValueError("curated_subset does not exist: curate first (acav curate, or materialize it)")
        if stamp < first:
            raise ValueError(
                f"--as-of {as_of} is before curated_subset's first version "
                f"({first.isoformat(timespec='seconds')}): there was no subset then"
            )
        return wh.scan("curated_subset", version=stamp).collect().sort("rank"), stamp.isoformat()
    current = wh.version("curated_subset")
    if current is None or not 0 <= as_of <= current:
        raise ValueError(f"curated_subset has versions 0..{current}, not {as_of}")
    return wh.scan("curated_subset", version=as_of).collect().sort("rank"), as_of
