"""Near-duplicate detection on real encodes: families of copies (high-CRF re-encode, half
resolution, 1 s trimmed at each end, another audio bitrate) keep exactly one ok video, within a
batch and across batches; distinct videos are never merged."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from acav_assets.core.export.cut import CutConfig, cut_clip
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.fingerprint import NearDuplicateConfig, compare, fingerprint_file
from acav_assets.core.stages.near_duplicates import fingerprint_rows, mark_near_duplicates
from acav_assets.core.warehouse.tables import Warehouse

VARIANTS = {
    "crf45": CutConfig(crf=45),
    "half": CutConfig(short_side=32),
    "trim": CutConfig(),
    "abr24k": CutConfig(audio_bitrate=24_000),
}


def write_family(original: Path, out: Path) -> list[Path]:
    import av

    with av.open(str(original)) as c:
        duration = c.streams.video[0].frames / float(c.streams.video[0].average_rate)
    copies = []
    for name, cfg in VARIANTS.items():
        start, end = (1.0, duration - 1.0) if name == "trim" else (0.0, duration)
        p = out / f"{original.stem}_{name}.mp4"
        p.write_bytes(cut_clip(original, start, end, cfg).mp4)
        copies.append(p)
    return copies


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    base = tmp_path_factory.mktemp("families")
    originals = write_demo_videos(base / "src", 6, seed=71, duration_s=(8, 14), workers=1)
    landing = base / "landing"
    (landing / "b1").mkdir(parents=True)
    fams = {}
    for v in sorted((base / "src").glob("*.mp4")):
        (landing / "b1" / v.name).write_bytes(v.read_bytes())
        fams[v.name] = [v.name] + [p.name for p in write_family(v, landing / "b1")]
    write_demo_videos(base / "controls", 14, seed=72, duration_s=(8, 14), workers=1)  # distinct content
    for v in sorted((base / "controls").glob("*.mp4")):
        (landing / "b1" / f"control_{v.name}").write_bytes(v.read_bytes())
    del originals
    return base, landing, fams


def test_each_family_keeps_exactly_one_ok_video_and_controls_stay_ok(families):
    from acav_assets.defs.definitions import ASSETS
    from acav_assets.defs.ingest import videos
    from acav_assets.defs.runner import resources_for

    base, landing, fams = families
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("batches", ["b1"])
    res = resources_for(str(landing), str(base / "wh"))
    from acav_assets.defs.definitions import CHECKS

    result = dg.materialize(
        [*ASSETS, *CHECKS],
        selection=dg.AssetSelection.assets(videos),
        partition_key="b1",
        instance=instance,
        resources=res,
    )
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "near_duplicates_point_at_kept_copies"
    ]
    assert check.passed and check.metadata["near_duplicates"].value == 24 and check.metadata["families"].value == 6
    rows = Warehouse(str(base / "wh")).read("videos")
    status = {Path(p).name: s for p, s in zip(rows["path"], rows["status"])}
    in_family = {name for members in fams.values() for name in members}
    for original, members in fams.items():
        kept = [m for m in members if status[m] == "ok"]
        assert len(kept) == 1, (original, {m: status[m] for m in members})
        assert all(status[m] == "near_duplicate" for m in members if m not in kept)
        # the kept copy: longest (not the trimmed one), then most pixels (not the half-size one)
        assert "trim" not in kept[0] and "half" not in kept[0]
    controls = [n for n in status if n not in in_family and n.endswith(".mp4")]
    assert len(controls) == 14 and all(status[n] == "ok" for n in controls)
    nd = rows.filter(pl.col("status") == "near_duplicate")
    assert nd["duplicate_of"].is_in(rows.filter(pl.col("status") == "ok")["path"].implode()).all()
    (mat,) = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
    assert mat.metadata["near_duplicates"].value == 6 * 4 and "near_duplicate" in str(
        mat.metadata["near_duplicate_pairs"]
    )
    # pictures on demand (the default): the stored fingerprints hold sound
    # only (every video here has sound) and the families were told by pictures read from the files
    assert (Warehouse(str(base / "wh")).read("video_fingerprints")["key_times"].list.len() == 0).all()
    assert "on demand" in mat.metadata["near_duplicate_pairs"].value

    # a later batch brings another copy of an original: it is the near-duplicate of the earlier one
    (landing / "b2").mkdir()
    original = sorted(fams)[0]
    (landing / "b2" / "reupload.mp4").write_bytes(cut_clip(landing / "b1" / original, 0.0, 6.0, CutConfig(crf=40)).mp4)
    write_demo_videos(base / "more", 3, seed=73, duration_s=(8, 14), workers=1)
    for v in sorted((base / "more").glob("*.mp4")):
        (landing / "b2" / f"new_{v.name}").write_bytes(v.read_bytes())
    instance.add_dynamic_partitions("batches", ["b2"])
    dg.materialize(ASSETS, selection=[videos], partition_key="b2", instance=instance, resources=res)
    b2 = Warehouse(str(base / "wh")).read("videos").filter(pl.col("batch") == "b2")
    st = dict(zip([Path(p).name for p in b2["path"]], b2["status"]))
    assert st.pop("reupload.mp4") == "near_duplicate" and set(st.values()) == {"ok"}
    assert b2.filter(pl.col("path").str.ends_with("reupload.mp4"))["duplicate_of"][0] == f"b1/{original}"


def test_no_distinct_videos_are_merged(tmp_path):
    """False-merge rate on 200 distinct generated videos (8 sound and picture classes, so many
    share their kind of sound and picture): 0."""
    write_demo_videos(tmp_path / "b", 200, seed=74, duration_s=(6, 12))
    rows = [
        {
            "batch": "b",
            "video_id": p.stem,
            "path": f"b/{p.name}",
            "status": "ok",
            "duration_s": 10.0,
            "width": 96,
            "height": 64,
            "size_bytes": p.stat().st_size,
        }
        for p in sorted((tmp_path / "b").glob("*.mp4"))
    ]
    prints = fingerprint_rows(rows, tmp_path, workers=2)
    assert len(prints) == 200
    pairs = mark_near_duplicates(rows, prints)
    assert pairs == [] and all(r["status"] == "ok" for r in rows)


def test_compare_explains_its_verdict(families):
    base, landing, fams = families
    original = sorted(fams)[0]
    a = fingerprint_file(landing / "b1" / original)
    ok, ev = compare(a, fingerprint_file(landing / "b1" / fams[original][3]))  # the trimmed copy
    assert ok and ev["shift_s"] == 1.0 and ev["audio_agreement"] >= 0.5
    other = sorted(fams)[1]
    ok, ev = compare(a, fingerprint_file(landing / "b1" / other))
    assert not ok and ev["audio_agreement"] < 0.3


def test_index_of_earlier_batches_follows_the_tables_and_reads_only_candidates(families, tmp_path):
    """The on-disk hash index: built from the tables, updated by the batches written since,
    rebuilt when lost; a lookup reads the fingerprints of the candidates only."""
    from acav_assets.core.media.probe import probe_file
    from acav_assets.core.stages.near_duplicates import _earlier_candidates, from_row
    from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex

    base, landing, fams = families
    wh = Warehouse(str(tmp_path / "wh"))

    def rows_of(batch: str, files: list[Path]) -> list[dict]:
        return [{**probe_file(f).to_row(), "batch": batch, "path": str(f.relative_to(landing))} for f in files]

    originals = [landing / "b1" / name for name in sorted(fams)]
    controls = sorted((landing / "b1").glob("control_*.mp4"))
    old = rows_of("old", originals + controls)
    wh.write_batch("video_fingerprints", "old", fingerprint_rows(old, landing))
    wh.write_batch("videos", "old", old)
    index = FingerprintIndex(wh)
    assert index.path.is_relative_to(tmp_path / "wh")
    assert index.sync() == ["old"] and index.live_videos() == 20
    assert index.sync() == []  # nothing written since

    copies = [landing / "b1" / fams[originals[0].name][1], landing / "b1" / fams[originals[3].name][4]]
    # (control 0 shows a nearly flat picture: with sound alone as evidence it would not be merged)
    new = rows_of("new", copies + [landing / "b1" / "control_video_00001.mp4"])
    new[2]["video_id"] += "x"  # a control seen again under another id: an exact copy, still found
    prints = fingerprint_rows(new, landing)
    prior, votes = _earlier_candidates(index, [(r, from_row(r)) for r in prints], "new", NearDuplicateConfig())
    # the candidates' fingerprints are read (the three copies' originals, and a few that share
    # some sound hashes and are then rejected), not the 20 of the earlier batch
    read = {Path(r["path"]).name for r, _ in prior}
    assert {originals[0].name, originals[3].name, "control_video_00001.mp4"} <= read and len(read) <= 6
    pairs = mark_near_duplicates(new, prints, index)
    assert {p["near_duplicate"]: p["kept"] for p in pairs} == {
        str(c.relative_to(landing)): str(o.relative_to(landing))
        for c, o in zip(
            copies + [landing / "b1" / "control_video_00001.mp4"], [originals[0], originals[3], controls[1]]
        )
    }

    # the earlier batch is rewritten with one video no longer kept: re-indexed, the old entries retired
    old[0]["status"] = "corrupt"
    wh.write_batch("videos", "old", old)
    assert index.sync() == ["old"] and index.live_videos() == 19
    assert index.prune() == 20
    new = rows_of("new", copies)
    assert [p["kept"] for p in mark_near_duplicates(new, fingerprint_rows(new, landing), index)] == [
        str(originals[3].relative_to(landing))
    ]

    # a lost index is rebuilt from the tables
    index.path.unlink()
    Path(f"{index.path}-wal").unlink(missing_ok=True)
    again = FingerprintIndex(wh)
    assert again.sync() == ["old"] and again.live_videos() == 19


@pytest.mark.parametrize("rate", [6000, 22050, 48000])
def test_sound_hashes_at_any_sample_rate_match_the_same_sound_resampled(rate):
    """The sound hashes follow the sound, not the sample rate: a recording at ``rate`` and the
    same recording at 16 kHz agree in most windows (measured: 0.81 at 6 kHz, 0.95, 1.0; 6 kHz: its top bands lie above the Nyquist
    frequency and stay empty, which must not break the band sums)."""
    import numpy as np

    from acav_assets.core.media.fingerprint import _audio_hashes, popcount64

    rng = np.random.default_rng(3)
    notes = rng.uniform(350, 2800, 24)  # a melody of 0.25 s notes with harmonics

    def render(sr: int) -> np.ndarray:
        t = np.arange(int(6 * sr)) / sr
        f = notes[(t / 0.25).astype(int) % notes.size]
        return (np.sin(2 * np.pi * np.cumsum(f) / sr) + 0.3 * np.sin(4 * np.pi * np.cumsum(f) / sr)).astype(np.float32)

    (a, sa), (b, sb) = _audio_hashes(render(rate), rate), _audio_hashes(render(16000), 16000)
    assert a.size == b.size == 21 and sa.all() and sb.all()
    assert (popcount64(a ^ b) <= NearDuplicateConfig().audio_bits).mean() >= 0.75  # matching needs 0.4
    other, _ = _audio_hashes(render(rate)[::-1].copy(), rate)  # the melody backwards: another sound
    assert (popcount64(a ^ other) <= NearDuplicateConfig().audio_bits).mean() < 0.4


@pytest.mark.parametrize("order,start", [("long_first", 8.0), ("long_first", 7.14), ("excerpt_first", 7.14)])
def test_an_excerpt_of_a_long_video_is_found_in_either_landing_order(tmp_path, order, start):
    """A 10 s excerpt from ``start`` s into a 60 s video (both written with libx264's defaults),
    in two batches either way round, with whole-file sound (``window_s=0``): the sound aligns
    far from either video's stored picture samples, so the picture is sampled from the file at
    the aligned times, and the pair is merged (the earlier batch's copy kept). An excerpt of
    another 60 s video stays ok. At 7.14 s the excerpt's sound grid falls between the long
    video's (0.11 of the windows agreed on the stored grids alone: not found before the sound
    was hashed on the grids between)."""
    from acav_assets.core.generators.encodings import ENCODINGS, Encoding, reencode
    from acav_assets.core.media.probe import probe_file
    from acav_assets.core.stages.near_duplicates import local_files
    from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex

    src = write_demo_videos(tmp_path / "src", 2, seed=5, duration_s=(60, 61), size=(128, 96), workers=1)
    del src
    long_video, other = sorted((tmp_path / "src").glob("*.mp4"))
    landing = tmp_path / "landing"
    first, second = landing / "b1", landing / "b2"
    long_dir, excerpt_dir = (first, second) if order == "long_first" else (second, first)
    for d in (first, second):
        d.mkdir(parents=True)
    reencode(long_video, long_dir / "long.mp4", {e.name: e for e in ENCODINGS}["x264_defaults"])
    reencode(long_video, excerpt_dir / "excerpt.mp4", Encoding("excerpt", start_s=start, end_s=start + 10.0))
    reencode(other, excerpt_dir / "other_excerpt.mp4", Encoding("excerpt", start_s=start, end_s=start + 10.0))
    wh, config = Warehouse(str(tmp_path / "wh")), NearDuplicateConfig(window_s=0)
    status = {}
    for batch in ("b1", "b2"):
        rows = [
            {**probe_file(f).to_row(), "batch": batch, "path": f"{batch}/{f.name}"}
            for f in sorted((landing / batch).glob("*.mp4"))
        ]
        prints = fingerprint_rows(rows, landing, window_s=config.window_s)
        index = FingerprintIndex(wh)
        index.sync()
        pairs = mark_near_duplicates(rows, prints, index, config, local_files(landing))
        wh.write_batch("video_fingerprints", batch, prints)
        wh.write_batch("videos", batch, rows)
        status.update({r["path"]: (r["status"], r.get("duplicate_of")) for r in rows})
    copy, kept = ("b2/excerpt.mp4", "b1/long.mp4") if order == "long_first" else ("b2/long.mp4", "b1/excerpt.mp4")
    assert status[copy] == ("near_duplicate", kept), status
    assert status[kept][0] == "ok" and status[f"{excerpt_dir.name}/other_excerpt.mp4"][0] == "ok"
    assert pairs and pairs[0]["picture_sampled"] == "on demand" and abs(abs(pairs[0]["shift_s"]) - start) <= 0.1


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_the_grids_between_are_the_sound_hashed_from_later_starts(rate):
    """Each grid between (two spectrum passes for all of them) hashes exactly what hashing the
    sound from its offset would, the offsets ~32 ms apart spanning one hop."""
    from acav_assets.core.media.fingerprint import HOP_S, OFFGRID, _audio_hashes, _offgrid_hashes

    rng = np.random.default_rng(rate)
    x = (rng.standard_normal(rate * 7) * np.sin(np.arange(rate * 7) / rate * 3)).astype(np.float32)
    grid, sounding = _audio_hashes(x, rate)
    between, between_sounding, offsets = _offgrid_hashes(x, rate, grid.size)
    assert between.shape == (OFFGRID - 1, grid.size) and np.all(np.diff(offsets) > 0.03)
    assert 0.9 * HOP_S - 0.04 < offsets[-1] < HOP_S
    for row, offset in enumerate(offsets):
        h, s = _audio_hashes(x[int(round(offset * rate)) :], rate)
        n = min(h.size, grid.size)
        assert np.array_equal(between[row, :n], h[:n]) and np.array_equal(between_sounding[row, :n], s[:n])
        assert not np.array_equal(between[row, :n], grid[:n])
