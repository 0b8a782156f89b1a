"""Nothing is read from outside the landing area: real symlinks to a private video elsewhere, to
/etc/passwd, a relative link climbing out, get status ``outside_landing`` and are never opened
(their id is derived from the path, not from content), while links that stay inside the landing
area, and links into a folder the user allowed, are read as usual."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.probe import ProbeConfig
from acav_assets.core.stages.videos import probe_rows
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs.runner import curate_landing


@pytest.fixture
def landing(tmp_path):
    src = tmp_path / "src"
    write_demo_videos(src, 6, seed=91, duration_s=(4, 6), size=(64, 48), workers=1)
    vids = sorted(src.glob("*.mp4"))
    private = tmp_path / "private"
    private.mkdir()
    shutil.copy(vids[0], private / "secret.mp4")  # a good video a user never meant to share
    land = tmp_path / "landing"
    (land / "b0").mkdir(parents=True)
    (land / "b1").mkdir(parents=True)
    shutil.copy(vids[1], land / "b0" / "earlier.mp4")
    for v in vids[2:]:
        shutil.copy(v, land / "b1" / v.name)
    (land / "b1" / "link_private.mp4").symlink_to(private / "secret.mp4")
    (land / "b1" / "link_passwd.mp4").symlink_to("/etc/passwd")
    (land / "b1" / "climb.mp4").symlink_to(Path("..") / ".." / "private" / "secret.mp4")
    (land / "b1" / "link_inside.mp4").symlink_to(Path("..") / "b0" / "earlier.mp4")
    return tmp_path, land, private


def test_links_out_of_the_landing_area_are_never_read(landing):
    base, land, private = landing
    rows = {Path(r["path"]).name: r for r in probe_rows(land, "b1")}
    for name in ("link_private.mp4", "link_passwd.mp4", "climb.mp4"):
        r = rows[name]
        assert r["status"] == "outside_landing", (name, r["status"], r["error"])
        assert r["video_id"].startswith("p")  # a path-derived id: the content was never hashed
        assert r["size_bytes"] is None and r["duration_s"] is None
        assert "outside the landing area" in r["error"] and "\n" not in r["error"]
    assert rows["link_inside.mp4"]["status"] == "ok"  # inside the landing area: read as usual
    assert sum(r["status"] == "ok" for r in rows.values()) == 5


def test_an_allowed_folder_is_read(landing):
    base, land, private = landing
    rows = {Path(r["path"]).name: r for r in probe_rows(land, "b1", ProbeConfig(allowed_roots=(str(private),)))}
    assert rows["climb.mp4"]["status"] == "ok"
    assert rows["link_private.mp4"]["status"] == "duplicate"  # the same file, through another link
    assert rows["link_passwd.mp4"]["status"] == "outside_landing"  # /etc is still not allowed


def test_a_curation_never_clips_or_selects_a_file_from_outside(landing):
    base, land, private = landing
    report = curate_landing(
        str(land),
        str(base / "wh"),
        instance=dg.DagsterInstance.ephemeral(),
        log_level="ERROR",
        run_config={"ops": {"curated_subset": {"config": {"budget": 1.0}}}},
    )
    assert report.batches == ["b0", "b1"]
    wh = Warehouse(str(base / "wh"))
    vids = wh.read("videos")
    outside = vids.filter(pl.col("status") == "outside_landing")["path"].to_list()
    assert sorted(outside) == ["b1/climb.mp4", "b1/link_passwd.mp4", "b1/link_private.mp4"]
    for table in ("clips", "curated_subset"):
        paths = set(wh.read(table)["path"].to_list())
        assert paths and not paths & set(outside), table
    assert os.path.exists(private / "secret.mp4")


def test_a_link_changed_after_probing_is_not_read_by_later_steps(landing):
    """A link that pointed inside the landing area when it was probed, retargeted outside before
    its clips are embedded: the embedding step does not open it (status outside_landing)."""
    from acav_assets.core.features.profiles import build_profile
    from acav_assets.core.stages.embeddings import embedding_rows

    base, land, private = landing
    rows = {Path(r["path"]).name: r for r in probe_rows(land, "b1")}
    assert rows["link_inside.mp4"]["status"] == "ok"
    link = land / "b1" / "link_inside.mp4"
    link.unlink()
    link.symlink_to(private / "secret.mp4")  # retargeted after probing
    good = next(n for n, r in rows.items() if r["status"] == "ok" and not n.startswith("link"))
    clips = [
        {"batch": "b1", "clip_id": "c_link", "path": "b1/link_inside.mp4", "start_s": 0.0, "end_s": 3.0},
        {"batch": "b1", "clip_id": "c_ok", "path": f"b1/{good}", "start_s": 0.0, "end_s": 3.0},
    ]
    df, failed = embedding_rows(clips, land, build_profile("weightfree", device="cpu"))
    assert failed["c_link"].startswith("outside_landing")
    assert set(df["clip_id"].to_list()) == {"c_ok"}
    allowed, failed = embedding_rows(
        clips, land, build_profile("weightfree", device="cpu"), allowed_roots=(str(private),)
    )
    assert set(allowed["clip_id"].to_list()) == {"c_ok", "c_link"} and not failed
