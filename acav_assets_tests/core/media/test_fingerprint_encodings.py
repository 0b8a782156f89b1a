"""Near-duplicates on files encoded the way real uploads are: libx264 with its defaults (keyint
250: one keyframe, at 0 s, in a short video), a display rotation; and no merge on one weak signal
(one music bed under different pictures, black pictures, no sound)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.generators.encodings import Encoding, reencode
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.fingerprint import compare, fingerprint_file
from acav_assets.core.media.probe import probe_file
from acav_assets.core.stages.near_duplicates import fingerprint_rows, local_files, mark_near_duplicates

DEFAULTS = Encoding("x264_defaults")


def _keyframes(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size)


def _rows(folder: Path, root: Path) -> list[dict]:
    rows = []
    for p in sorted(folder.iterdir()):
        rec = probe_file(p)
        assert rec.status == "ok", (p.name, rec.error)
        rows.append(
            {
                "batch": "b",
                "video_id": p.stem,
                "path": str(p.relative_to(root)),
                "status": "ok",
                "duration_s": rec.duration_s,
                "width": rec.width,
                "height": rec.height,
            }
        )
    return rows


def _decode(path: Path) -> tuple[np.ndarray, float, np.ndarray, int]:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(vs)])
        c.seek(0)
        res = av.AudioResampler(format="flt", layout="mono", rate=22050)
        audio = np.concatenate([o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)])
    return frames, fps, audio, 22050


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("encodings")
    write_demo_videos(base / "src", 10, seed=81, duration_s=(7, 12), size=(128, 96), workers=1)
    return base, sorted((base / "src").glob("*.mp4"))


@pytest.mark.parametrize("on_demand", [False, True], ids=["pictures_always", "pictures_on_demand"])
def test_copy_families_in_x264_default_encodes_keep_one_ok_video_each(corpus, on_demand):
    """Originals and copies (CRF 35 re-encode, half size, 1 s trimmed at each end) all written
    with libx264's defaults: one keyframe per file. Every video gets a fingerprint with picture
    samples, and every family keeps exactly one ok video (before: no fingerprint for any). With
    pictures on demand (the default) the fingerprints hold sound only and the
    pictures of the pairs whose sound agrees are sampled from the files: the same families."""
    base, sources = corpus
    landing = base / f"landing_{on_demand}"
    (landing / "b").mkdir(parents=True)
    families = {}
    for src in sources[:4]:
        dur = probe_file(src).duration_s
        members = {
            "orig": DEFAULTS,
            "crf35": Encoding("crf35", video_options={"crf": "35"}),
            "half": Encoding("half", short_side=48),
            "trim": Encoding("trim", start_s=1.0, end_s=dur - 1.0),
        }
        names = []
        for tag, enc in members.items():
            out = landing / "b" / f"{src.stem}_{tag}.mp4"
            reencode(src, out, enc)
            names.append(out.name)
        families[src.stem] = names
    for src in sources[4:]:  # distinct videos beside them
        reencode(src, landing / "b" / f"{src.stem}_alone.mp4", DEFAULTS)
    assert all(_keyframes(p) == 1 for p in (landing / "b").iterdir())  # what real short uploads look like
    rows = _rows(landing / "b", landing)
    prints = fingerprint_rows(rows, landing, pictures_on_demand=on_demand)
    assert len(prints) == len(rows)  # coverage: every decodable video
    assert all(len(fp["key_times"]) == 0 if on_demand else len(fp["key_times"]) >= 6 for fp in prints)
    pairs = mark_near_duplicates(rows, prints, locate=local_files(landing) if on_demand else None)
    status = {Path(r["path"]).name: r["status"] for r in rows}
    for stem, names in families.items():
        kept = [n for n in names if status[n] == "ok"]
        assert len(kept) == 1, {n: status[n] for n in names}
    assert all(s == "ok" for n, s in status.items() if n.endswith("_alone.mp4"))
    assert len(pairs) == 3 * len(families)
    if on_demand:  # the picture still decided, sampled from both files
        assert all(p["picture_sampled"] == "on demand" and p["visual_agreement"] >= 0.7 for p in pairs), pairs


def test_a_rotated_phone_copy_is_found_upright(corpus, tmp_path):
    _, sources = corpus
    src = sources[0]
    orig, turned = tmp_path / "orig.mp4", tmp_path / "turned.mp4"
    reencode(src, orig, DEFAULTS)
    reencode(src, turned, Encoding("rotated_90", rotate=90))
    ok, ev = compare(fingerprint_file(orig), fingerprint_file(turned))
    assert ok and ev["visual_agreement"] >= 0.9, ev


@pytest.mark.parametrize("on_demand", [False, True], ids=["pictures_always", "pictures_on_demand"])
def test_no_merge_on_one_weak_signal(tmp_path, on_demand):
    """Distinct videos that share one signal stay distinct: one music bed under different real
    photographs (scikit-image's, panned and zoomed); the same music under black pictures (the
    picture is unknown, not a vote); the same (black) picture without sound. With pictures on
    demand the shared music makes them candidates, and the pictures sampled from their files
    keep them apart."""
    from acav_assets.core.generators.photos_sounds import check_available, write_photo_sound_videos

    missing = check_available()
    if missing:
        pytest.skip(f"photos corpus unavailable: {missing}")
    truth = write_photo_sound_videos(tmp_path / "src", 24, seed=3, size=(160, 120), fps=12)
    sources = sorted((tmp_path / "src").glob("*.mp4"))
    folder = tmp_path / "b"
    folder.mkdir()
    _, _, bed, rate = _decode(sources[0])
    photo_of = {v.file: v.photo for v in truth}
    pictures = {}  # one video per photograph
    for src in sources[1:]:
        pictures.setdefault(photo_of[src.name], src)
    assert len(pictures) >= 4
    for i, src in enumerate(list(pictures.values())[:4]):
        frames, fps, _, _ = _decode(src)
        n = min(len(frames), int(len(bed) / rate * fps))
        write_video(folder / f"bed_{i}.mp4", frames[:n], fps, bed[: int(n / fps * rate)], rate)
        black = np.zeros_like(frames[:n]) + np.uint8(3)
        write_video(folder / f"black_bed_{i}.mp4", black, fps, bed[: int(n / fps * rate)], rate)
        write_video(folder / f"black_silent_{i}.mp4", black, fps, np.zeros(int(n / fps * rate), np.float32), rate)
    rows = _rows(folder, tmp_path)
    prints = fingerprint_rows(rows, tmp_path, pictures_on_demand=on_demand)
    assert len(prints) == len(rows)
    by_name = {Path(p["path"]).name: p for p in prints}
    assert len(by_name["black_silent_0.mp4"]["key_times"]) > 0  # no sound: sampled now, but showing nothing
    assert (len(by_name["black_bed_0.mp4"]["key_times"]) == 0) == on_demand
    pairs = mark_near_duplicates(rows, prints, locate=local_files(tmp_path))
    assert pairs == [], pairs
    assert all(r["status"] == "ok" for r in rows)


def test_the_lead_in_before_the_picture_samples_is_bounded(tmp_path):
    """A long video with one keyframe: rather than decoding everything before its centre, the
    picture is left unsampled (unknown); the sound is still fingerprinted."""
    from acav_assets.core.media.fingerprint import MAX_LEAD_FRAMES

    fps, rate = 10.0, 8000
    dur = 2 * MAX_LEAD_FRAMES / fps + 20
    n = int(dur * fps)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    audio = (
        0.3
        * np.sin(2 * np.pi * 440 * np.arange(int(dur * rate)) / rate)
        * (1 + np.sign(np.sin(np.arange(int(dur * rate)) / rate * 7)))
    ).astype(np.float32)
    path = tmp_path / "long.mp4"
    write_video(path, frames, fps, audio, rate, gop_s=10 * dur)
    assert _keyframes(path) == 1
    fp = fingerprint_file(path)
    assert fp.frame_times.size == 0 and fp.audio_sounding.any()
    short = tmp_path / "short.mp4"  # the same with its centre within reach of the keyframe
    keep = MAX_LEAD_FRAMES / fps
    write_video(short, frames[:MAX_LEAD_FRAMES], fps, audio[: int(keep * rate)], rate, gop_s=10 * dur)
    assert fingerprint_file(short).frame_times.size >= 6


def test_a_fingerprint_with_pictures_meets_one_without(corpus, tmp_path):
    """A warehouse upgraded in place holds fingerprints with picture samples (earlier batches) and
    without (pictures on demand): a copy is still found across them, the missing side sampled from
    its file; without a readable file the picture is unknown and nothing is merged."""
    from acav_assets.core.media.fingerprint import NearDuplicateConfig
    from acav_assets.core.stages.near_duplicates import PicturesOnDemand, compare_pair

    _, sources = corpus
    orig, copy = tmp_path / "orig.mp4", tmp_path / "copy.mp4"
    reencode(sources[1], orig, DEFAULTS)
    reencode(sources[1], copy, Encoding("crf35", video_options={"crf": "35"}))
    earlier = ({"batch": "b1", "path": str(orig)}, fingerprint_file(orig))
    later = ({"batch": "b2", "path": str(copy)}, fingerprint_file(copy, pictures_on_demand=True))
    assert earlier[1].frame_times.size >= 6 and later[1].frame_times.size == 0
    pictures = PicturesOnDemand(lambda row: row["path"])
    ok, ev = compare_pair(earlier, later, NearDuplicateConfig(), pictures.locate, pictures)
    assert ok and ev["picture_sampled"] == "on demand" and ev["visual_agreement"] >= 0.7, ev
    gone = PicturesOnDemand(lambda row: None)  # the copy's file is not on this machine
    ok, ev = compare_pair(earlier, later, NearDuplicateConfig(), gone.locate, gone)
    assert not ok and ev["visual_agreement"] is None, ev


def test_a_picture_only_comparison_reads_the_missing_picture_on_demand(corpus, tmp_path):
    """A copy whose sound is muted but for 1 s (too little to compare) is compared with its
    original by the picture alone. With pictures on demand the copy's picture is sampled at ingest
    (its sound is not usable) and the original, fingerprinted by its sound alone, has its picture
    read from its file for the comparison: found (before, the comparison stopped at the missing
    picture)."""
    from acav_assets.core.media.fingerprint import NearDuplicateConfig
    from acav_assets.core.stages.near_duplicates import PicturesOnDemand, compare_pair, from_row

    _, sources = corpus
    folder = tmp_path / "b"
    folder.mkdir()
    reencode(sources[2], folder / "original.mp4", DEFAULTS)
    frames, fps, audio, rate = _decode(folder / "original.mp4")
    mid = len(audio) // 2
    muted = np.zeros_like(audio)
    muted[mid - rate // 2 : mid + rate // 2] = audio[mid - rate // 2 : mid + rate // 2]
    write_video(folder / "muted_copy.mp4", frames, fps, muted, rate)
    rows = _rows(folder, tmp_path)
    prints = {Path(p["path"]).name: p for p in fingerprint_rows(rows, tmp_path, pictures_on_demand=True)}
    original, copy = prints["original.mp4"], prints["muted_copy.mp4"]
    assert 0 < sum(copy["audio_sounding"]) < 12  # some sound, too little to compare
    assert len(original["key_times"]) == 0 and len(copy["key_times"]) >= 7  # the copy's picture: sampled now
    pictures = PicturesOnDemand(local_files(tmp_path))
    ok, ev = compare_pair(
        (original, from_row(original)), (copy, from_row(copy)), NearDuplicateConfig(), pictures.locate, pictures
    )
    assert ok and ev["audio_agreement"] is None and ev["picture_sampled"] == "on demand", ev
    assert ev["visual_agreement"] >= 0.8 and ev["frames_compared"] >= 7, ev
