"""Export of the curated subset: exact clips, WebDataset shards read back by a PyTorch DataLoader,
incremental and resumable exports, time travel, vanished media — on real curated warehouses."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import av
import numpy as np
import polars as pl
import pytest

from acav_assets.cli import main as acav_main
from acav_assets.core.export.cut import CutConfig, cut_clip
from acav_assets.core.export.shards import ExportConfig, read_manifest
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.landing import Landing
from acav_assets.core.stages.curated_clips import export_curated
from acav_assets.core.warehouse.tables import Warehouse


def shard_keys(folder) -> list[str]:
    keys = []
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            keys += sorted({m.name.split(".", 1)[0] for m in tar})
    return keys


def sample_contents(folder) -> dict[str, tuple]:
    """Per clip: its JSON (minus nothing: it is deterministic), and the decoded video frames and
    audio samples of its mp4 (counts, and a digest of the first frame)."""
    out = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar}
        for name, data in members.items():
            if name.endswith(".mp4"):
                key = name[:-4]
                with av.open(io.BytesIO(data)) as c:
                    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
                with av.open(io.BytesIO(data)) as c:
                    samples = sum(f.samples for f in c.decode(audio=0))
                out[key] = (
                    members[key + ".json"],
                    len(frames),
                    samples,
                    frames[0].shape,
                    hashlib.sha256(members[key + ".frames.npy"]).hexdigest(),
                )
    return out


def test_cut_starts_at_the_window_to_the_frame_and_the_sample(tmp_path):
    fps, sr = 10, 16000
    frames = np.zeros((60, 32, 48, 3), np.uint8)
    for i in range(60):
        frames[i] = i * 4  # frame i is grey level 4i
    t = np.arange(6 * sr) / sr
    audio = np.where(t >= 2.0, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    write_video(tmp_path / "v.mp4", frames, fps, audio, sr, codec="libx264")
    cut = cut_clip(tmp_path / "v.mp4", 2.05, 4.05, CutConfig(with_arrays=True, crf=0))
    assert cut.n_frames == 20 and cut.fps == 10 and cut.sample_rate == sr and cut.n_samples == 2 * sr
    grey = cut.frames.reshape(20, -1).mean(axis=1)
    assert np.allclose(grey, 4 * np.arange(20, 40), atol=3)  # frame shown at 2.05 s is frame 20, then one per slot
    assert np.abs(cut.audio[0, :160]).max() > 0.3  # the tone starts with the window (it began at 2.0 s)
    with av.open(io.BytesIO(cut.mp4)) as c:
        decoded = [f for f in c.decode(video=0)]
    with av.open(io.BytesIO(cut.mp4)) as c:
        n_audio = sum(f.samples for f in c.decode(audio=0))
    assert len(decoded) == 20
    assert abs(n_audio / sr - 2.0) <= 1 / fps
    before = cut_clip(tmp_path / "v.mp4", 0.0, 1.0, CutConfig(with_arrays=True))
    assert np.abs(before.audio).max() < 0.05  # silence before the tone: nothing leaks in from later


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Batch a curated, then batch b added (a warm start): curated_subset versions 0 and 1."""
    import dagster as dg

    from acav_assets.defs.runner import curate_landing

    base = tmp_path_factory.mktemp("export")
    landing, wh_root = base / "landing", str(base / "wh")
    write_demo_videos(landing / "a", 16, seed=61, duration_s=(6, 12))
    instance = dg.DagsterInstance.ephemeral()
    curate_landing(str(landing), wh_root, instance=instance, log_level="ERROR")
    write_demo_videos(landing / "b", 10, seed=62, duration_s=(6, 12))
    curate_landing(str(landing), wh_root, instance=instance, log_level="ERROR")
    wh = Warehouse(wh_root)
    assert wh.version("curated_subset") >= 1
    return base, landing, wh


def test_every_selected_clip_is_exported_once_and_decodes_through_a_dataloader(curated, tmp_path):
    import torch
    import webdataset as wds

    base, landing, wh = curated
    subset = wh.read("curated_subset")
    report = export_curated(
        wh, Landing(str(landing)), tmp_path / "out", config=ExportConfig(shard_max_clips=3, workers=2)
    )
    assert report.written == subset.height and not report.failed
    keys = shard_keys(tmp_path / "out")
    assert sorted(keys) == sorted(subset["clip_id"]) and len(keys) == len(set(keys))
    manifest = read_manifest(tmp_path / "out")
    assert manifest.height == subset.height and manifest["clip_id"].n_unique() == subset.height
    assert set(manifest["status"]) == {"ok"} and manifest["in_selection"].all()
    csv = pl.read_csv(tmp_path / "out" / "manifest.csv")  # the same rows and columns, for spreadsheets
    assert csv.columns == manifest.columns and csv.height == manifest.height and csv["in_selection"].all()
    assert manifest["selection_id"].unique().to_list() == subset["selection_id"].unique().to_list()
    table = wh.read("export_manifest")
    assert sorted(table["clip_id"]) == sorted(subset["clip_id"])
    # the manifest's offsets point at each sample's first member, and its size ends at the next
    for row in manifest.iter_rows(named=True):
        with open(tmp_path / "out" / row["shard"], "rb") as f:
            f.seek(row["offset_bytes"])
            assert f.read(100).rstrip(b"\0").decode().startswith(row["clip_id"] + "."), row
            f.seek(row["offset_bytes"] + row["sample_bytes"])
            following = f.read(100).rstrip(b"\0").decode()
            assert following == "" or not following.startswith(row["clip_id"] + "."), row

    windows = {r["clip_id"]: r["end_s"] - r["start_s"] for r in subset.iter_rows(named=True)}

    def decode(sample):
        with av.open(io.BytesIO(sample["mp4"])) as c:
            fps = float(c.streams.video[0].average_rate)
            video = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
        with av.open(io.BytesIO(sample["mp4"])) as c:
            sr = c.streams.audio[0].rate
            audio = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
        return sample["__key__"], torch.from_numpy(video), torch.from_numpy(audio), fps, sr, sample["json"]

    urls = [str(p) for p in sorted((tmp_path / "out").glob("*.tar"))]
    loader = torch.utils.data.DataLoader(
        wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(decode), batch_size=None, num_workers=2
    )
    seen = []
    for key, video, audio, fps, sr, meta in loader:
        seen.append(key)
        window = windows[key]
        assert abs(video.shape[0] / fps - window) <= 1 / fps  # duration within one frame
        assert video.shape[-1] == 3 and audio.shape[1] > 0
        assert abs(audio.shape[1] / sr - window) <= 1 / fps
        import json

        assert json.loads(meta)["clip_id"] == key
    assert sorted(seen) == sorted(subset["clip_id"])


def test_export_after_a_warm_start_writes_only_new_clips_into_new_shards_and_as_of_exports_the_earlier_subset(
    curated, tmp_path
):
    base, landing, wh = curated
    first = wh.read("curated_subset", version=0)
    now = wh.read("curated_subset")
    assert set(first["clip_id"]) < set(now["clip_id"])
    out = tmp_path / "out"
    rep = export_curated(wh, Landing(str(landing)), out, as_of=0, config=ExportConfig(shard_max_clips=2, workers=1))
    assert rep.written == first.height and rep.subset_version == "0"
    assert sorted(read_manifest(out)["clip_id"]) == sorted(first["clip_id"])
    old = {p.name: p.read_bytes() for p in out.glob("*.tar")}
    rep = export_curated(wh, Landing(str(landing)), out, config=ExportConfig(shard_max_clips=2, workers=1))
    assert rep.already == first.height and rep.written == now.height - first.height
    assert set(rep.shards_written).isdisjoint(old)  # new shards only
    assert {n: (out / n).read_bytes() for n in old} == old  # earlier shards untouched
    keys = shard_keys(out)
    assert sorted(keys) == sorted(now["clip_id"]) and len(keys) == len(set(keys))
    # a second run has nothing to do
    again = export_curated(wh, Landing(str(landing)), out, config=ExportConfig(shard_max_clips=2, workers=1))
    assert again.written == 0 and again.shards_written == []


def test_vanished_media_is_recorded_not_fatal_and_exported_once_it_is_back(curated, tmp_path, capsys):
    base, landing, wh = curated
    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    subset = wh.read("curated_subset").sort("rank")
    gone = subset.row(0, named=True)
    (copy / gone["path"]).rename(tmp_path / "moved.mp4")
    rc = acav_main(
        ["export", "--warehouse", wh.root, "--landing", str(copy), "--out", str(tmp_path / "out"), "--workers", "1"]
    )
    out = capsys.readouterr().out
    assert rc == 1 and f"not exported: {gone['clip_id']}: missing_media" in out
    manifest = read_manifest(tmp_path / "out")
    assert manifest.filter(pl.col("status") == "ok").height == subset.height - 1
    assert manifest.filter(pl.col("clip_id") == gone["clip_id"])["status"].to_list() == ["missing_media"]
    (tmp_path / "moved.mp4").rename(copy / gone["path"])
    assert (
        acav_main(
            ["export", "--warehouse", wh.root, "--landing", str(copy), "--out", str(tmp_path / "out"), "--workers", "1"]
        )
        == 0
    )
    manifest = read_manifest(tmp_path / "out")
    assert set(manifest["status"]) == {"ok"} and manifest.height == subset.height
    keys = shard_keys(tmp_path / "out")
    assert sorted(keys) == sorted(subset["clip_id"])


def test_an_export_killed_mid_way_resumes_to_the_same_clips_without_duplicates(curated, tmp_path):
    base, landing, wh = curated
    subset = wh.read("curated_subset")
    cmd = [
        sys.executable,
        "-m",
        "acav_assets.cli",
        "export",
        "--warehouse",
        wh.root,
        "--landing",
        str(landing),
        "--out",
        str(tmp_path / "killed"),
        "--shard-clips",
        "1",
        "--workers",
        "1",
        "--with-arrays",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*.tar"))) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list((tmp_path / "killed").glob("*.tar")))
    assert 2 <= partial < subset.height, "the export finished before it could be killed"
    assert not (tmp_path / "killed" / "manifest.parquet").exists()  # killed before it wrote any manifest
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    keys = shard_keys(tmp_path / "killed")
    assert sorted(keys) == sorted(subset["clip_id"]) and len(keys) == len(set(keys))
    assert not list((tmp_path / "killed").glob("*.tmp"))
    # the same contents as an export that was never interrupted
    clean = tmp_path / "clean"
    export_curated(
        wh,
        Landing(str(landing)),
        clean,
        config=ExportConfig(shard_max_clips=1, workers=1, cut=CutConfig(with_arrays=True)),
    )
    assert sample_contents(tmp_path / "killed") == sample_contents(clean)
    assert sorted(read_manifest(tmp_path / "killed")["clip_id"]) == sorted(subset["clip_id"])
