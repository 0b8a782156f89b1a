"""Checks of the selection: the size the budget asked for and no clip twice; better than random
subsets of the same pool; every batch with clips selected from (WARN naming those still pending)."""

import dagster as dg
import numpy as np

from acav_assets.core.selection import mean_mutual_information, resolve_pairs
from acav_assets.core.stages.centroids import load_clusterings
from acav_assets.core.stages.labels import assignment_matrix
from acav_assets.core.stages.report import latest_run, run_pair_weights
from acav_assets.defs.platform.resources import WarehouseResource

__all__ = ["subset_beats_random", "subset_covers_every_batch", "subset_size_and_unique"]


@dg.asset_check(asset="curated_subset", description="The subset has the size the budget asked for and no clip twice.")
def subset_size_and_unique(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    df = warehouse.get().read("curated_subset")
    event = context.instance.get_latest_materialization_event(dg.AssetKey("curated_subset"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    expected = meta["expected_size"].value if "expected_size" in meta else None
    budget = meta["budget"].value if "budget" in meta else None
    pool = meta["pool_size"].value if "pool_size" in meta else None
    if expected is None and budget is not None and pool is not None:  # materializations of older versions
        expected = round(budget * pool) if budget <= 1 else int(budget)
    dupes = df.height - df["clip_id"].n_unique() if df.height else 0
    passed = df.height > 0 and dupes == 0 and (expected is None or df.height == expected)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"rows": df.height, "expected": expected if expected is not None else -1, "duplicates": dupes},
    )


MIN_POOL_TO_JUDGE = 100  # the pool size below which pair weighting also stops judging pairs
MIN_SUBSET_TO_JUDGE = 10


@dg.asset_check(
    asset="curated_subset",
    description="The subset's objective beats random subsets of the same size "
    "drawn from the same pool (5 draws). On a pool of fewer than 100 "
    "clips (or a subset under 10) it warns that it cannot judge.",
)
def subset_beats_random(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    subset = wh.read("curated_subset")
    clusterings = load_clusterings(wh)
    modal = {c.clustering_id: c.feature_space.split("/", 1)[0] for c in clusterings}
    clusterings = sorted(clusterings, key=lambda c: (modal[c.clustering_id] != "audio", c.feature_space))
    clip_ids, labels, columns, _ = assignment_matrix(wh, clusterings)
    event = context.instance.get_latest_materialization_event(dg.AssetKey("curated_subset"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    pairing = meta["pairing"].value if "pairing" in meta else "bipartite"
    pairs = resolve_pairs(pairing, len(columns), [modal[c] for c in columns])
    rows = clip_ids.rows_of(subset["clip_id"])
    if rows.size == 0:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "empty subset or no assignments"})
    if len(clip_ids) < MIN_POOL_TO_JUDGE or rows.size < MIN_SUBSET_TO_JUDGE:
        # a handful of clips: MI of random subsets is as noisy as ours, no verdict is possible
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "reason": f"not judged: a pool of {len(clip_ids)} clips and a subset of {rows.size} are too small to tell "
                f"a selection from random (needs >= {MIN_POOL_TO_JUDGE} and >= {MIN_SUBSET_TO_JUDGE})",
                "pool_size": len(clip_ids),
                "subset_size": int(rows.size),
            },
        )
    weights = run_pair_weights(latest_run(wh))  # the objective the selection maximised
    if weights is not None and weights.size != len(pairs):
        weights = None
    ours = mean_mutual_information(labels, rows, pairing=pairs, pair_weights=weights)
    rng = np.random.default_rng(0)
    randoms = [
        mean_mutual_information(
            labels, rng.choice(len(clip_ids), rows.size, replace=False), pairing=pairs, pair_weights=weights
        )
        for _ in range(5)
    ]
    return dg.AssetCheckResult(
        passed=bool(ours > max(randoms)),
        metadata={
            "objective": float(ours),
            "random_best": float(max(randoms)),
            "random_mean": float(np.mean(randoms)),
        },
    )


@dg.asset_check(
    asset="curated_subset",
    description="Every batch that has clips is in the selection; a batch "
    "still pending (ingest failed or under way, assignments "
    "incomplete) is named, as a WARN.",
)
def subset_covers_every_batch(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.get()
    with_clips = set(wh.batches("clips"))
    try:
        selected = set(latest_run(wh)["batches"])
    except ValueError as exc:
        return dg.AssetCheckResult(passed=False, metadata={"reason": str(exc)})
    pending = sorted(with_clips - selected)
    return dg.AssetCheckResult(
        passed=not pending,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"batches_selected": len(selected), "batches_pending": dg.MetadataValue.json(pending)},
    )
