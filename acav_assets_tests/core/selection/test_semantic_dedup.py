"""Semantic dedup of clips before selection: the pure bucketed cosine step, and a real curation
whose pool holds re-encoded copies that video-level near-duplicate detection was told to keep."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from acav_assets.core.selection.semantic_dedup import semantic_duplicates


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_bucketed_cosine_keeps_the_earliest_copy_and_needs_every_space():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 16)), rng.standard_normal((8, 16))
    # rows 5 and 7 repeat rows 1 and 2 in both spaces; row 6 repeats row 3 in space a only
    for dup, src in ((5, 1), (7, 2)):
        a[dup], b[dup] = a[src] + 1e-3 * rng.standard_normal(16), b[src] + 1e-3 * rng.standard_normal(16)
    a[6] = a[3]
    buckets = np.array([0, 1, 2, 3, 4, 1, 3, 2])
    dup, kept, cos = semantic_duplicates([_unit(a), _unit(b)], buckets, 0.99)
    assert dup.tolist() == [5, 7] and kept.tolist() == [1, 2] and (cos >= 0.99).all()
    # the same copies in other buckets are not compared (the peers' approximation)
    dup, _, _ = semantic_duplicates([_unit(a), _unit(b)], np.arange(8), 0.99)
    assert dup.size == 0
    # rows that may not be removed stay, and still count as kept copies
    removable = np.array([True] * 7 + [False])
    dup, kept, _ = semantic_duplicates([_unit(a), _unit(b)], buckets, 0.99, removable=removable)
    assert dup.tolist() == [5] and kept.tolist() == [1]
    with pytest.raises(ValueError, match="threshold"):
        semantic_duplicates([_unit(a)], buckets, 0.0)


@pytest.fixture(scope="module")
def copies_landing(tmp_path_factory):
    from acav_assets.core.export.cut import CutConfig, cut_clip
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.probe import probe_file

    base = tmp_path_factory.mktemp("semdedup")
    landing = base / "landing"
    write_demo_videos(landing / "b1", 40, seed=81, duration_s=(8, 12), workers=1)
    originals = sorted((landing / "b1").glob("*.mp4"))[:6]
    for v in originals:  # a whole re-encode: another file, the same content
        duration = probe_file(v).duration_s
        (landing / "b1" / f"copy_{v.name}").write_bytes(cut_clip(v, 0.0, duration, CutConfig(crf=30)).mp4)
    return base, landing, originals


def test_curation_leaves_semantic_copies_out_of_the_pool_and_records_them(copies_landing):
    from acav_assets.core.warehouse.tables import Warehouse
    from acav_assets.defs.runner import curate_landing

    base, landing, originals = copies_landing
    wh_root = str(base / "wh")
    ops = {
        "videos": {"config": {"near_duplicates": False}},  # the copies reach the pool
        "curated_subset": {"config": {"budget": 0.25, "dedup_cosine": 0.99}},
    }
    instance = dg.DagsterInstance.ephemeral()
    curate_landing(str(landing), wh_root, instance=instance, log_level="WARNING", run_config={"ops": ops})
    wh = Warehouse(wh_root)
    run = wh.read("selection_runs").row(0, named=True)
    dups = wh.read("semantic_duplicates")
    clips = wh.read("clips").select("clip_id", "path")
    named = dups.join(clips, on="clip_id").join(
        clips.rename({"clip_id": "duplicate_of", "path": "kept_path"}), on="duplicate_of"
    )
    pairs = {Path(p).name: Path(k).name for p, k in zip(named["path"], named["kept_path"])}
    # every re-encoded copy is found (in either direction: the earlier clip id is kept)
    for v in originals:
        assert pairs.get(f"copy_{v.name}") == v.name or pairs.get(v.name) == f"copy_{v.name}", (v.name, pairs)
    assert run["semantic_duplicates"] == dups.height and (dups["selection_id"] == run["selection_id"]).all()
    assert run["pool_size"] == clips.height - dups.height
    subset = wh.read("curated_subset")
    assert not subset["clip_id"].is_in(dups["clip_id"].implode()).any()
    assert subset.height == round(0.25 * run["pool_size"])
    # the lineage counts the pool without the copies
    lineage = wh.read("selection_lineage")
    first_pair = lineage.filter(pl.col("pair_index") == lineage["pair_index"].min())
    assert first_pair["pool_count"].sum() == run["pool_size"]
    print(f"semantic duplicates at cosine 0.99: {dups.height} of {clips.height} clips; pairs {pairs}")

    # a later batch brings another copy of a selected clip: the warm start leaves it out too
    from acav_assets.core.export.cut import CutConfig, cut_clip
    from acav_assets.core.generators.demo import write_demo_videos
    from acav_assets.core.media.probe import probe_file

    chosen = subset.filter(~pl.col("path").str.contains("copy_")).sort("rank").row(0, named=True)
    src = landing / chosen["path"]
    write_demo_videos(landing / "b2", 8, seed=82, duration_s=(8, 12), workers=1)
    (landing / "b2" / "again.mp4").write_bytes(cut_clip(src, 0.0, probe_file(src).duration_s, CutConfig(crf=28)).mp4)
    curate_landing(str(landing), wh_root, instance=instance, log_level="WARNING", run_config={"ops": ops})
    runs = wh.read("selection_runs").sort("created_at")
    second = runs.row(-1, named=True)
    assert json.loads(second["params"])["mode"] == "incremental"
    new_dups = wh.read("semantic_duplicates").filter(pl.col("selection_id") == second["selection_id"])
    again = wh.read("clips").filter(pl.col("path") == "b2/again.mp4")["clip_id"][0]
    assert new_dups.filter(pl.col("clip_id") == again)["duplicate_of"].to_list() == [chosen["clip_id"]]
    assert second["semantic_duplicates"] == run["semantic_duplicates"] + new_dups.height
    assert second["pool_size"] == run["pool_size"] + 9 - new_dups.height
    assert not wh.read("curated_subset")["clip_id"].is_in(new_dups["clip_id"].implode()).any()
