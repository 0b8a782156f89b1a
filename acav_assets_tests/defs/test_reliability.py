"""Reliability: bad input, killed writers, concurrent batches, re-runs, hostile names and config,
bounded work. Real files, real Delta tables, real Dagster runs, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import dagster as dg
import numpy as np
import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.bad_inputs import write_bad_inputs
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.landing import batch_dir, landing_batches
from acav_assets.core.media.probe import probe_files
from acav_assets.core.warehouse.tables import Warehouse, validate_batch_key
from acav_assets.defs.runner import curate_landing

pytestmark = pytest.mark.slow  # end to end through Dagster (a quick loop: -m 'not slow')

PY = sys.executable


def test_bad_input_batch_next_to_good_videos(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "good", 10, seed=51)
    expected = write_bad_inputs(landing / "bad", seed=52)
    report = curate_landing(
        str(landing), str(tmp_path / "wh"), instance=dg.DagsterInstance.ephemeral(), log_level="ERROR"
    )
    wh = Warehouse(str(tmp_path / "wh"))
    vids = wh.read("videos").filter(pl.col("batch") == "bad")
    names = [Path(p).name for p in vids["path"].to_list()]
    assert sorted(names) == sorted(expected)  # every file exactly once
    got = dict(zip(names, vids["status"].to_list()))
    assert got == expected
    assert all(e for s, e in zip(vids["status"], vids["error"]) if s != "ok")
    ok_paths = set(vids.filter(pl.col("status") == "ok")["path"].to_list())
    assert len(ok_paths) == 4  # the reference, the VFR one, the non-ASCII and the spaced/quoted names
    clip_paths = set(wh.read("clips").filter(pl.col("batch") == "bad")["path"].to_list())
    assert clip_paths == ok_paths  # the good ones flow on
    embedded = wh.read("clip_embeddings").filter(pl.col("batch") == "bad")["clip_id"].n_unique()
    assert embedded == len(ok_paths)
    assert not report.failed_checks(), report.checks
    assert wh.read("curated_subset").height == round(0.2 * (10 + len(ok_paths)))


_WRITER = textwrap.dedent("""
    import sys, numpy as np, polars as pl
    from acav_assets.core.warehouse.tables import Warehouse
    wh = Warehouse(sys.argv[1])
    n, tag = int(sys.argv[2]), sys.argv[3]
    df = pl.DataFrame({"batch": "b1", "clip_id": [f"{tag}-{i}" for i in range(n)], "feature_space": "x",
                       "vector": pl.Series(np.random.default_rng(0).random((n, 16), dtype=np.float32))
                                   .cast(pl.Array(pl.Float32, 16)).cast(pl.List(pl.Float32))})
    print("writing", flush=True)
    wh.write_batch("clip_embeddings", "b1", df)
    print("done", flush=True)
""")


def test_a_killed_writer_leaves_the_previous_version(tmp_path):
    root = str(tmp_path / "wh")
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    subprocess.run([PY, str(script), root, "1000", "old"], check=True, capture_output=True)
    wh = Warehouse(root)
    v0 = wh.version("clip_embeddings")
    killed = 0
    for delay in (0.05, 0.2, 0.4, 0.8):
        proc = subprocess.Popen([PY, str(script), root, "3000000", "new"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += proc.returncode == -signal.SIGKILL
        df = wh.read("clip_embeddings")
        tags = set(df["clip_id"].str.split("-").list.first().unique().to_list())
        assert tags in ({"old"}, {"new"}), "a partial batch is visible"
        assert df.height == (1000 if tags == {"old"} else 3_000_000)
        if tags == {"old"}:
            assert wh.version("clip_embeddings") == v0
    assert killed >= 3  # most kills landed before the commit
    subprocess.run([PY, str(script), root, "2000", "rerun"], check=True, capture_output=True)
    df = wh.read("clip_embeddings")
    assert df.height == 2000 and df["clip_id"].n_unique() == 2000  # exactly one copy of each row


_BATCH_RUNNER = textwrap.dedent("""
    import sys, dagster as dg
    from acav_assets.defs.definitions import ASSETS
    from acav_assets.defs.ingest import videos, clips
    from acav_assets.defs.features import clip_embeddings
    from acav_assets.defs.runner import resources_for
    landing, wh, batch = sys.argv[1:4]
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("batches", [batch])
    dg.materialize(ASSETS, selection=[videos, clips, clip_embeddings], partition_key=batch, instance=inst,
                   resources=resources_for(landing, wh),
                   run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
""")


def test_eight_batches_at_once_lose_nothing(tmp_path):
    """Eight processes ingest eight batches into a fresh warehouse at once; two batches hold a
    byte copy of another's video and a CRF-45 re-encode of another's: of each pair exactly one
    stays ok (whichever batch took the lookup lock first), the other is marked."""
    from acav_assets.core.export.cut import CutConfig, cut_clip

    landing = tmp_path / "landing"
    batches = [f"b{i}" for i in range(8)]
    for i, b in enumerate(batches):
        write_demo_videos(landing / b, 2, seed=60 + i, duration_s=(5.0, 6.0), workers=1)
    exact = sorted((landing / "b0").glob("*.mp4"))[0]
    (landing / "b1" / "copy_of_b0.mp4").write_bytes(exact.read_bytes())
    near = sorted((landing / "b2").glob("*.mp4"))[0]
    with av.open(str(near)) as c:
        duration = float(c.duration / av.time_base)
    (landing / "b3" / "reencode_of_b2.mp4").write_bytes(cut_clip(near, 0.0, duration, CutConfig(crf=45)).mp4)
    script = tmp_path / "run_batch.py"
    script.write_text(_BATCH_RUNNER)
    root = str(tmp_path / "wh")  # the tables do not exist yet: creation races too
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([PY, str(script), str(landing), root, b], env=env, stderr=subprocess.PIPE, text=True)
        for b in batches
    ]
    errors = [p.communicate()[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(errors)
    wh = Warehouse(root)
    vids = wh.read("videos")
    assert dict(vids.group_by("batch").len().iter_rows()) == {**{b: 2 for b in batches}, "b1": 3, "b3": 3}
    for pair, marked in (
        (["b0/" + exact.name, "b1/copy_of_b0.mp4"], "duplicate"),
        (["b2/" + near.name, "b3/reencode_of_b2.mp4"], "near_duplicate"),
    ):
        got = vids.filter(pl.col("path").is_in(pair))
        assert sorted(got["status"]) == sorted(["ok", marked]), got.select("path", "status", "error")
        kept = got.filter(pl.col("status") == "ok")["path"][0]
        assert got.filter(pl.col("status") == marked)["duplicate_of"][0] == kept
    ok = dict(vids.filter(pl.col("status") == "ok").group_by("batch").len().iter_rows())
    for table, per_video in (("clips", 1), ("clip_embeddings", 10)):
        counts = dict(wh.read(table).group_by("batch").len().iter_rows())
        assert counts == {b: per_video * n for b, n in ok.items()}, (table, counts)
    assert wh.read("clips")["clip_id"].n_unique() == wh.read("clips").height == 16


def test_the_whole_pipeline_twice_gives_identical_tables(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 8, seed=71)
    write_demo_videos(landing / "b", 8, seed=72)
    root = str(tmp_path / "wh")
    tables = [
        "videos",
        "clips",
        "clip_embeddings",
        "cluster_centroids",
        "cluster_assignments",
        "curated_subset",
        "selection_lineage",
        "selection_runs",
    ]
    snaps = []
    for _ in range(2):
        curate_landing(str(landing), root, instance=dg.DagsterInstance.ephemeral(), log_level="ERROR")
        wh = Warehouse(root)
        snap = {}
        for t in tables:
            df = wh.read(t).drop("created_at", strict=False)
            if t == "selection_runs":  # the assignments and clip_sync table versions a selection read
                df = df.with_columns(
                    pl.col("params")
                    .str.replace(r'"assignments_version": \d+, ', "")
                    .str.replace(r'"sync_version": (\d+|null)(, )?', "")
                )
            snap[t] = df.sort([c for c, d in df.schema.items() if not isinstance(d, pl.List)])
        snaps.append(snap)
    for t in tables:
        assert snaps[0][t].height > 0, t
        assert snaps[0][t].equals(snaps[1][t]), f"{t} differs after re-running the pipeline"


@pytest.mark.parametrize(
    "name",
    ["it's", "a,b", "with space", "../up", "a/b", "x' OR '1'='1", ".hidden", "", "a" * 129, "tab\there", "naïve"],
)
def test_hostile_batch_names_are_rejected(name):
    with pytest.raises(ValueError, match="invalid batch name"):
        validate_batch_key(name)


def test_hostile_folders_cannot_inject_or_escape(tmp_path):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "fine_batch", 2, seed=80, duration_s=(4.0, 5.0), workers=1)
    for bad in ("it's", "a,b", "x' OR '1'='1"):
        (landing / bad).mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (landing / "escape").symlink_to(outside, target_is_directory=True)
    ok, rejected = landing_batches(landing)
    assert "fine_batch" in ok and set(rejected) == {"it's", "a,b", "x' OR '1'='1"}
    with pytest.raises(ValueError, match="outside the landing root"):
        batch_dir(landing, "escape")
    wh = Warehouse(str(tmp_path / "wh"))
    with pytest.raises(ValueError, match="invalid batch name"):
        wh.write_batch("videos", "x' OR '1'='1", [])
    with pytest.raises(ValueError, match="unsafe key"):
        wh.replace_key("selection_runs", "selection_id", "x' OR '1'='1", [])


def test_too_few_clips_is_a_state_that_the_next_batch_completes(tmp_path, capsys):
    """One good video and a broken file: the broken file is one warning line; one clip is too
    few to cluster, which is a state, not a failure: exit 0, one line saying that selection waits,
    the batch ingested, no stack trace. The same through the asset (automation): it succeeds
    without a materialization, so nothing downstream runs. The next batch completes it."""
    landing = tmp_path / "landing"
    write_demo_videos(landing / "b1", 1, seed=5, duration_s=(12.0, 14.0), workers=1)
    (landing / "b1" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    wh = str(tmp_path / "wh")
    rc = acav_main(["curate", str(landing), "--warehouse", wh])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "1 clip(s): too few to cluster, need >= 2; ingested, selection waits for more data" in out, out
    assert "Traceback" not in out + err and "Stack Trace" not in out + err and "acav: error" not in err, out + err
    assert "warning: videos: b1/broken.mp4: corrupt" in out, out
    assert Warehouse(wh).read("clip_embeddings")["clip_id"].n_unique() == 1
    assert Warehouse(wh).read("cluster_centroids").height == 0

    from acav_assets.defs.definitions import ASSETS
    from acav_assets.defs.features import cluster_centroids
    from acav_assets.defs.runner import resources_for

    result = dg.materialize(
        ASSETS,
        selection=dg.AssetSelection.assets(cluster_centroids),
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources_for(str(landing), wh),
    )
    assert result.success and result.get_asset_materialization_events() == []

    write_demo_videos(landing / "b2", 6, seed=6, duration_s=(12.0, 14.0), workers=1)
    rc = acav_main(["curate", str(landing), "--warehouse", wh])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert "waits" not in out and Warehouse(wh).read("curated_subset").height > 0, out


def test_bad_configuration_fails_before_any_work(tmp_path, capsys):
    landing = tmp_path / "landing"
    write_demo_videos(landing / "a", 3, seed=90, duration_s=(4.0, 5.0), workers=1)
    wh = str(tmp_path / "wh")
    for argv, message in [
        (["curate", str(landing), "--warehouse", wh, "--budget", "0"], "--budget"),
        (["curate", str(landing), "--warehouse", wh, "--budget", "-0.5"], "--budget"),
        (["curate", str(tmp_path / "nowhere"), "--warehouse", wh], "does not exist"),
        (["curate", str(landing), "--warehouse", "  "], "warehouse root is empty"),
        (["explain", "x", "--warehouse", str(tmp_path / "no_warehouse")], "does not exist"),
    ]:
        assert acav_main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not Path(wh).exists()  # nothing was written
    with pytest.raises(SystemExit):
        acav_main(["curate", str(landing), "--warehouse", wh, "--pairing", "everything"])
    assert "invalid choice" in capsys.readouterr().err
    result = dg.materialize(
        __import__("acav_assets.defs.definitions", fromlist=["ASSETS"]).ASSETS,
        selection=["cluster_centroids"],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        resources=__import__("acav_assets.defs.runner", fromlist=["x"]).resources_for(str(landing), wh),
        run_config={"ops": {"cluster_centroids": {"config": {"max_k": 1}}}},
    )
    assert not result.success
    assert "k must be at least 2" in str(
        result.get_step_failure_events()[0].event_specific_data.error
    ) or "clip_embeddings is empty" in str(result.get_step_failure_events()[0].event_specific_data.error)


def test_probing_is_bounded_per_file(tmp_path):
    big = tmp_path / "big.mp4"
    with open(big, "wb") as fh:  # 256 MB of zeros: hashing alone takes far longer than the limit
        block = b"\x00" * (1 << 20)
        for _ in range(256):
            fh.write(block)
    small = tmp_path / "zz_small.mp4"
    small.write_bytes(b"not a video")
    recs = probe_files([big, small], timeout_s=0.02)
    assert [r.status for r in recs] == ["timeout", "corrupt"]  # the batch goes on after the stuck file
    assert "0.02 s" in recs[0].error


def test_decoding_memory_is_bounded_by_the_window_not_the_file(tmp_path):
    from acav_assets.core.media.decode import DecodeConfig, decode_clip
    from acav_assets.core.media.encode import write_video

    n = 20 * 60 * 2  # a 20-minute video at 2 fps
    frames = np.zeros((n, 32, 32, 3), np.uint8)
    frames[..., 0] = (np.arange(n) % 250)[:, None, None]
    path = tmp_path / "long.mp4"
    write_video(path, frames, 2.0, np.zeros(20 * 60 * 8000, np.float32), 8000)
    clip = decode_clip(path, 600.0, 610.0, DecodeConfig(n_frames=8, short_side=16))
    assert clip.frames.shape == (8, 16, 16, 3) and clip.audio.shape == (160_000,)
    expected = (np.floor((600 + (np.arange(8) + 0.5) * 10 / 8) * 2) % 250).astype(int)
    assert np.allclose(clip.frames[..., 0].mean((1, 2)), expected, atol=4)


def test_media_gone_between_steps_is_recorded_not_fatal(tmp_path):
    """Videos deleted after probing: clips still get windows, and the embedding step records a
    failure per clip instead of failing; a whole batch folder gone behaves the same."""
    from acav_assets.defs.definitions import ASSETS
    from acav_assets.defs.features import clip_embeddings
    from acav_assets.defs.ingest import clips, videos
    from acav_assets.defs.runner import resources_for

    landing, root = tmp_path / "landing", str(tmp_path / "wh")
    write_demo_videos(landing / "b1", 3, seed=61, duration_s=(25, 30), workers=1)
    write_demo_videos(landing / "b2", 2, seed=62, duration_s=(12, 14), workers=1)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["b1", "b2"])
    res = resources_for(str(landing), root)
    cfg = {"ops": {"clips": {"config": {"max_clips": 2}}}}
    for b in ("b1", "b2"):
        assert dg.materialize(ASSETS, selection=[videos], partition_key=b, instance=instance, resources=res).success
    gone = sorted((landing / "b1").glob("*.mp4"))[0]
    gone.unlink()
    for p in (landing / "b2").iterdir():
        p.unlink()
    (landing / "b2").rmdir()
    failed = {}
    for b in ("b1", "b2"):
        result = dg.materialize(
            ASSETS,
            selection=[clips, clip_embeddings],
            partition_key=b,
            instance=instance,
            resources=res,
            run_config=cfg,
        )
        assert result.success
        meta = result.asset_materializations_for_node("clip_embeddings")[0].metadata
        failed[b] = (meta["clips_failed"].value, meta["failures"].value)
    wh = Warehouse(root)
    clip_rows = wh.read("clips")
    embedded = set(wh.read("clip_embeddings")["clip_id"].to_list())
    lost = clip_rows.filter(pl.col("path") == f"b1/{gone.name}")["clip_id"].to_list()
    assert lost and not embedded & set(lost)  # windows were cut, embedding failed per clip
    assert set(clip_rows.filter(pl.col("batch") == "b1")["clip_id"]) - set(lost) <= embedded
    assert clip_rows.filter(pl.col("batch") == "b2").height == 2 and not embedded & set(
        clip_rows.filter(pl.col("batch") == "b2")["clip_id"].to_list()
    )
    assert failed["b1"][0] == len(lost) and lost[0] in failed["b1"][1]  # listed, with why, in the UI
    assert failed["b2"][0] == 2
