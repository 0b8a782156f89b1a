"""``clip_sync`` in the platform: every clip of a batch gets its sound's offset (null when unknown,
never "out of sync"), the selection leaves the clips flagged out of sync out by default and says
so, ``acav explain`` names the reason, ``--sync-filter keep`` selects as before, and a second run
redoes nothing. Real files: recorded hits under pictures that strike at them, half of them shifted."""

from __future__ import annotations

import json

import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.generators.sync_events import check_available, write_sync_event_videos
from acav_assets.core.warehouse.tables import SCHEMAS, Warehouse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(check_available()), reason="the sync corpus needs the stamps packages"),
]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    base = tmp_path_factory.mktemp("sync")
    landing, wh_root = base / "landing", base / "wh"
    videos = write_sync_event_videos(landing / "s", 24, size=(128, 96), seed=3)
    argv = ["curate", str(landing), "--warehouse", str(wh_root), "--budget", "0.5"]
    assert acav_main(argv) == 0
    return landing, wh_root, Warehouse(str(wh_root)), videos, argv


def test_every_clip_gets_an_offset_or_unknown_and_shifted_ones_are_flagged(synced):
    landing, wh_root, wh, videos, _ = synced
    sync = wh.read("clip_sync")
    clips = wh.read("clips")
    assert sync.columns == list(SCHEMAS["clip_sync"]) and sync.height == clips.height > 0.8 * len(videos)
    paths = dict(zip(clips["clip_id"], clips["path"]))
    truth = {f"s/{v.file}": v for v in videos}
    rows = [(truth[paths[r["clip_id"]]], r) for r in sync.iter_rows(named=True)]
    eventless = [r for v, r in rows if not v.has_events]
    assert eventless and all(r["offset_s"] is None and r["out_of_sync"] is None and r["reason"] for r in eventless)
    flagged = [(v, r) for v, r in rows if r["out_of_sync"]]
    assert flagged, "no shifted clip was flagged"
    assert all(v.shifted for v, _ in flagged)  # an in-sync clip is never flagged
    # the sign is the truth's: > 0 when the sound comes late
    assert all((r["offset_s"] > 0) == (v.offset_s > 0) for v, r in flagged)


def test_the_selection_leaves_flagged_clips_out_and_explain_says_why(synced, capsys):
    landing, wh_root, wh, videos, _ = synced
    flagged = set(wh.read("clip_sync").filter(pl.col("out_of_sync").fill_null(False))["clip_id"])
    subset = set(wh.read("curated_subset")["clip_id"])
    assert flagged and not flagged & subset
    run = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert run["out_of_sync_excluded"] == len(flagged)
    assert json.loads(run["params"])["sync_filter"] == "exclude"
    capsys.readouterr()
    assert acav_main(["explain", sorted(flagged)[0], "--warehouse", str(wh_root)]) == 0
    out = capsys.readouterr().out
    assert "OUT OF SYNC" in out and "left it out of the pool" in out


def test_a_second_run_redoes_nothing_and_keep_selects_flagged_clips_again(synced, capsys):
    landing, wh_root, wh, videos, argv = synced
    versions = {t: wh.version(t) for t in ("clip_sync", "curated_subset")}
    capsys.readouterr()
    assert acav_main(argv) == 0
    out = capsys.readouterr().out
    assert "through 0 Dagster runs" in out and "clip_sync" in out  # listed as up to date
    assert {t: wh.version(t) for t in versions} == versions
    assert acav_main([*argv, "--sync-filter", "keep"]) == 0
    run = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    assert run["out_of_sync_excluded"] == 0 and json.loads(run["params"])["sync_filter"] == "keep"
    assert wh.version("clip_sync") == versions["clip_sync"]  # a selection setting re-selects, nothing else


def test_new_sync_flags_make_the_subset_stale_for_both_doors(synced, capsys):
    """Stricter out-of-sync flags (clip_sync re-estimated with another max_score) change what the
    selection leaves out, so the subset is stale and re-selected; then a plain acav curate finds
    it up to date. Before, the subset's version ignored clip_sync: it kept the old flags' picks."""
    from acav_assets.cli.common import dagster_instance
    from acav_assets.core.warehouse.local_state import local_state_dir
    from acav_assets.defs.runner import curate_landing

    landing, wh_root, wh, videos, argv = synced
    assert acav_main([*argv, "--sync-filter", "exclude"]) == 0  # the default again, held by the warehouse
    before = wh.version("curated_subset")
    instance, _ = dagster_instance(None, local_state_dir(str(wh_root), "_dagster"))
    report = curate_landing(
        str(landing), str(wh_root), instance=instance, run_config={"ops": {"clip_sync": {"config": {"max_score": 0.9}}}}
    )
    assert "curated_subset, selection_lineage" not in report.skipped, report.skipped
    assert wh.version("curated_subset") > before
    run = wh.read("selection_runs").sort("created_at").row(-1, named=True)
    flagged = wh.read("clip_sync")["out_of_sync"].fill_null(False).sum()
    assert run["out_of_sync_excluded"] == flagged
    now = wh.version("curated_subset")
    capsys.readouterr()
    report = curate_landing(
        str(landing), str(wh_root), instance=instance, run_config={"ops": {"clip_sync": {"config": {"max_score": 0.9}}}}
    )
    assert "curated_subset, selection_lineage" in report.skipped and wh.version("curated_subset") == now
