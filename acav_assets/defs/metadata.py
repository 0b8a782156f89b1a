"""Materialization metadata: schemas, previews and counts that the Dagster UI shows."""

from __future__ import annotations

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


def selection_summary(
    *,
    mode: str,
    why: str,
    size: int,
    pool: int,
    budget: float,
    pairing: str,
    added: int,
    objective: float,
    pairs: int,
    by_batch: Mapping[str, int],
    spaces: pl.DataFrame,
    refine_swaps: int,
    excluded: int,
    seed: int,
    restart_objectives,
    weighting: str,
    semantic: int,
    semantic_examples: pl.DataFrame | None,
) -> str:
    """A selection's materialization, in one markdown page: what was chosen and why."""
    restarts = (
        f"; {len(restart_objectives)} restarts, objectives "
        + ", ".join(f"{o:.4f}" for o in restart_objectives)
        + f" (seed {seed} kept)"
        if len(restart_objectives) > 1
        else ""
    )
    lines = [
        f"**{mode}** selection ({why}): **{size}** of {pool} clips at budget {budget:g}, pairing {pairing}; "
        f"{added} added by this run.",
        "",
        f"Objective: {objective:.4f} nats (mean mutual information over {pairs} clustering pairs; weighting "
        f"{weighting}){restarts}. Swap refinement: {refine_swaps} swap(s). Clips left out for an incomplete "
        f"assignment: {excluded}. Semantic duplicates left out of the pool: {semantic}.",
        "",
        "### Selected per batch",
        "",
        counts_table(by_batch, "batch", "selected"),
        "",
        "### Which feature spaces carried the correspondence",
        "",
        "Best adjusted MI of each space's pairs in the pool (label-free) and its share of the objective's weight:",
        "",
        markdown_table(spaces, limit=50),
    ]
    if semantic_examples is not None and semantic_examples.height:
        lines += ["", "### Semantic duplicates (examples)", "", markdown_table(semantic_examples, limit=10)]
    return "\n".join(lines)
