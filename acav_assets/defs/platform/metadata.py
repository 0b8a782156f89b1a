"""Materialization metadata: schemas, previews and counts that the Dagster UI shows."""

from __future__ import annotations

import json
from collections.abc import Mapping

import dagster as dg
import polars as pl

from acav_assets.core.warehouse.columns import column_description
from acav_assets.core.warehouse.tables import SCHEMAS


def table_schema(table: str) -> dg.TableSchema:
    """The table's columns: name, type and what each value is."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(dtype), description=column_description(table, name))
            for name, dtype in SCHEMAS[table].items()
        ]
    )


def markdown_table(df: pl.DataFrame, limit: int = 10) -> str:
    """A small markdown preview (vectors shown by their length)."""
    if df.height == 0:
        return "_(no rows)_"
    df = df.head(limit).with_columns(
        [
            pl.col(c).list.len().cast(pl.String).map_elements(lambda n: f"[{n} floats]", return_dtype=pl.String)
            for c, t in df.schema.items()
            if isinstance(t, pl.List)
        ]
    )
    cols = df.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    s = "" if v is None else str(v)
    return s.replace("|", "\\|").replace("\n", " ")[:80]


def counts_table(counts: Mapping[str, int], key: str, value: str = "count") -> str:
    lines = [f"| {key} | {value} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines)


def reasons_table(reasons: Mapping[str, str], key: str, value: str = "why", limit: int = 50) -> str:
    """A markdown table of {item: reason}, sorted by item, at most ``limit`` rows (then a count)."""
    items = sorted(reasons.items())
    lines = [f"| {key} | {value} |", "|---|---|"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in items[:limit]]
    if len(items) > limit:
        lines.append(f"| … | {len(items) - limit} more |")
    return "\n".join(lines)


def table_metadata(table: str, df: pl.DataFrame, *, wh=None, **extra) -> dict:
    """Row count, schema and preview of a Delta table; with the warehouse ``wh``, also where
    the table lives (``dagster/table_name``, ``dagster/uri``: the UI shows them)."""
    return {
        "dagster/row_count": df.height,
        "dagster/column_schema": table_schema(table),
        "preview": dg.MetadataValue.md(markdown_table(df)),
        **({"dagster/table_name": table, "dagster/uri": wh.uri(table)} if wh is not None else {}),
        **extra,
    }


def selection_summary(cur, params, mode: str, why: str, done) -> str:
    """A selection's materialization, in one markdown page: what was chosen and why (``cur`` the
    :class:`~acav_assets.core.stages.curation.Curation`, ``done`` its
    :class:`~acav_assets.core.stages.selection_commit.CommittedSelection`)."""
    sel, run = cur.selection, cur.run
    restarts = (
        f"; {len(cur.restart_objectives)} restarts, objectives "
        + ", ".join(f"{o:.4f}" for o in cur.restart_objectives)
        + f" (seed {cur.seed} kept)"
        if len(cur.restart_objectives) > 1
        else ""
    )
    refinement = json.loads(run.get("refinement") or '{"rule": "none"}')
    if refinement.get("rule") == "agreement":
        refined = f"Agreement refinement: {refinement.get('swaps', 0)} clip(s) exchanged" + (
            f" ({refinement['note']})." if refinement.get("note") else "."
        )
    else:
        refined = "Agreement refinement: off."
    lines = [
        f"**{mode}** selection ({why}): **{cur.subset.height}** of {run['pool_size']} clips at budget "
        f"{params.budget:g}, pairing {params.pairing}; {len(sel)} added by this run.",
        "",
        f"Objective: {sel.objective:.4f} nats (mean mutual information over {len(sel.pairs)} clustering pairs; "
        f"weighting {run['weighting']}){restarts}. Swap refinement: {sel.refine_swaps} swap(s). {refined} Clips "
        f"left out for an incomplete assignment: {cur.excluded}. Semantic duplicates left out of the pool: "
        f"{run['semantic_duplicates']}.",
        "",
        "### Selected per batch",
        "",
        counts_table(done.by_batch, "batch", "selected"),
        "",
        "### Which feature spaces carried the correspondence",
        "",
        "Best adjusted MI of each space's pairs in the pool (label-free) and its share of the objective's weight:",
        "",
        markdown_table(done.spaces, limit=50),
    ]
    if cur.duplicates is not None and cur.duplicates.height:
        lines += ["", "### Semantic duplicates (examples)", "", markdown_table(cur.duplicates, limit=10)]
    return "\n".join(lines)
