"""The selection: ``curated_subset`` (the clips whose sound belongs to their picture, chosen over
every batch, a warm start when batches are added) and ``selection_lineage`` (what drove it)."""

import base64
import json
from pathlib import Path

import dagster as dg

from acav_assets.core.stages.curation import SELECTION_KEYS, choose_mode, curate, curate_incremental, held_settings
from acav_assets.core.stages.selection_commit import CommittedSelection, commit_selection
from acav_assets.defs.curation.config import SelectionConfig
from acav_assets.defs.platform import versions
from acav_assets.defs.platform.metadata import markdown_table, selection_summary, table_metadata
from acav_assets.defs.platform.partitions import CURATION
from acav_assets.defs.platform.progress import Progress
from acav_assets.defs.platform.resources import WarehouseResource
from acav_assets.defs.platform.steps import data_version, fail
from acav_assets.defs.platform.versions import CODE_VERSIONS

__all__ = ["curated_subset"]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "curated_subset",
            deps=["cluster_assignments", "clips", "clip_sync"],
            group_name=CURATION,
            code_version=CODE_VERSIONS["curated_subset"],
            kinds={"numba", "deltalake"},
            # eager on new assignments, not held back by a batch whose assignments are
            # missing (its ingest failed or is under way: selected when they arrive);
            # new clips alone do not trigger it (their assignments will), and it waits
            # until some batch is assigned at all
            # a batch's first ingest (its assignments are part of the run) does not hold it
            # back either; a re-assignment of batches already assigned (a refit) does
            automation_condition=(
                dg.AutomationCondition.eager()
                .without(~dg.AutomationCondition.any_deps_missing())
                .without(~dg.AutomationCondition.any_deps_in_progress())
                .ignore(dg.AssetSelection.assets("clips", "clip_sync"))
                & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
                    dg.AssetSelection.assets("cluster_assignments")
                )
                & ~dg.AutomationCondition.any_deps_match(
                    dg.AutomationCondition.in_progress() & ~dg.AutomationCondition.missing()
                ).allow(dg.AssetSelection.assets("cluster_assignments"))
            ).with_label("eager on assignments, missing batches wait"),
            description="The selected clips, in the order chosen: batch-greedy maximisation of the mean "
            "audio-visual mutual information over every batch.",
        ),
        dg.AssetSpec(
            "selection_lineage",
            deps=["curated_subset"],
            group_name=CURATION,
            kinds={"deltalake"},
            code_version=CODE_VERSIONS["selection_lineage"],
            description="Per clustering pair and cluster cell: clips in the pool and in the subset, and "
            "the cell's share of the MI — what drove the selection.",
        ),
    ],
)
def curated_subset(context: dg.AssetExecutionContext, config: SelectionConfig, warehouse: WarehouseResource):
    wh = warehouse.get()
    progress = Progress(context.log.info, "selecting", "clip", every_s=5)
    try:
        held = held_settings(wh)
        config.check(held)  # a setting that cannot work with the warehouse's others fails before any work
        params = config.params(held)
        given = config.given()
        kept = [k for k in SELECTION_KEYS if k not in given and k in held]
        context.log.info(
            f"settings: {', '.join(f'{k} {getattr(params, k)!r}' for k in ('budget', 'pairing', 'seed'))}"
            + (f"; held by the warehouse: {', '.join(kept)}" if kept else "")
            + (f"; given by this run: {', '.join(given)}" if given else "")
        )
        version = versions.subset_version(
            versions.recorded_assignment_versions(context.instance),
            config.version_settings(held),
            versions.recorded_batch_versions(context.instance, "clip_sync"),
        )
        mode, why = choose_mode(wh, params)
        context.log.info(f"{mode} selection: {why}")
        cur = curate_incremental(wh, params, progress=progress) if mode == "incremental" else None
        if mode == "incremental" and cur is None:
            context.log.info("no new batch since the previous selection: the subset is unchanged")
            yield dg.MaterializeResult(
                asset_key="curated_subset", **data_version(version), metadata={"mode": "unchanged", "reason": why}
            )
            yield dg.MaterializeResult(asset_key="selection_lineage", metadata={"mode": "unchanged"})
            return
        if cur is None:
            cur = curate(wh, params, progress=progress)
    except ValueError as exc:
        raise fail(exc) from exc
    local = "://" not in warehouse.root  # a local warehouse keeps the report next to the tables
    done = commit_selection(
        wh, cur, params, mode, report_dir=Path(warehouse.root) / "_reports" / cur.selection_id if local else None
    )
    sel = cur.selection
    yield dg.MaterializeResult(
        asset_key="curated_subset",
        **data_version(version),
        metadata={
            **table_metadata(
                "curated_subset",
                cur.subset.select("rank", "path", "start_s", "end_s", "gain", "agreement", "chosen_by", "batch"),
                wh=wh,
            ),
            "dagster/row_count": cur.subset.height,  # the table's rows, not the added
            "selection_id": cur.selection_id,
            "objective_mi_nats": float(sel.objective),
            "budget": params.budget,
            "pool_size": cur.run["pool_size"],
            "expected_size": done.expected_size,  # computed apart from the result: the size check compares
            "pairing": params.pairing,
            "mode": mode,
            "mode_reason": why,
            "added": len(sel),
            "pairs_counted": int((cur.weighting.weights > 0).sum()),
            "agreement_swaps": int(json.loads(cur.run["refinement"]).get("swaps", 0)),
            # everything else a reader wants, in one place
            "summary": dg.MetadataValue.md(selection_summary(cur, params, mode, why, done)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="selection_lineage",
        metadata={
            **table_metadata("selection_lineage", done.lineage, wh=wh),
            "selection_id": cur.selection_id,
            "top_pairs": dg.MetadataValue.md(markdown_table(done.top_pairs, limit=10)),
            **_heatmap(done),
        },
    )


def _heatmap(done: CommittedSelection) -> dict:
    """The strongest pair's heatmap, inline, and where the report lies (a local warehouse)."""
    if done.report is None:
        return {}
    png = Path(done.report["heatmap"]).read_bytes()
    pair = done.strongest
    return {
        "heatmap": dg.MetadataValue.md(
            f"Selected clips per cell of the strongest pair ({pair['feature_space_a']} × "
            f"{pair['feature_space_b']}, MI {pair['pair_mi']:.3f}):\n\n"
            f"![heatmap](data:image/png;base64,{base64.b64encode(png).decode()})"
        ),
        "heatmap_path": dg.MetadataValue.path(done.report["heatmap"]),
        "report_path": dg.MetadataValue.path(done.report["report"]),
    }
