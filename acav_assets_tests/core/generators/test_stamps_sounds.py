"""The stamps corpus (photographed objects and animals with recorded sounds): material and videos."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import av
import pytest

from acav_assets.core.generators import stamps_sounds


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty corpus cache, so the GCompris archives are unpacked by this test."""
    missing = stamps_sounds.check_available()
    if missing:  # a failure under ACAV_REQUIRE_SERVICES=1 (CI), see conftest
        pytest.skip("stamps corpus needs " + ", ".join(missing) + " (run scripts/install_corpora.sh as root)")
    monkeypatch.setenv("ACAV_CORPUS_CACHE", str(tmp_path / "cache"))
    stamps_sounds.available_classes.cache_clear()
    stamps_sounds._backgrounds.cache_clear()
    yield tmp_path / "cache"
    stamps_sounds.available_classes.cache_clear()
    stamps_sounds._backgrounds.cache_clear()


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_classes_have_distinct_photographs_and_recordings(fresh_cache):
    classes = stamps_sounds.available_classes()
    assert (fresh_cache / "gcompris-qt").is_dir()  # unpacked into the cache
    assert len(classes) >= 10, [c[0] for c in classes]
    assert stamps_sounds.class_names() == [c[0] for c in classes]
    all_pictures, all_sounds = set(), set()
    for name, pictures, sounds in classes:
        assert len(pictures) >= 3 and len(sounds) >= 3, name
        assert all(p.endswith((".png", ".webp")) for p, _ in pictures), name  # photographs, no drawings
        pic_hashes, snd_hashes = {_sha(p) for _, p in pictures}, {_sha(p) for _, p in sounds}
        assert len(pic_hashes) == len(pictures) and len(snd_hashes) == len(sounds), name
        assert not all_pictures & pic_hashes and not all_sounds & snd_hashes, name  # no file in two classes
        all_pictures |= pic_hashes
        all_sounds |= snd_hashes


def test_stamps_corpus_is_what_its_ground_truth_says(fresh_cache, tmp_path):
    kw = dict(matched_fraction=0.5, size=(96, 64), fps=6, duration_s=(3, 4), seed=5)
    videos = stamps_sounds.write_stamp_sound_videos(tmp_path / "a", 12, workers=1, **kw)
    rows = list(csv.DictReader(open(tmp_path / "a" / "ground_truth.csv")))
    assert len(rows) == 12 and list(rows[0])[:5] == ["file", "visual_class", "audio_class", "matched", "duration_s"]
    assert [r["file"] for r in rows] == [v.file for v in videos]
    assert sum(v.matched for v in videos) == 6
    assert all((v.visual_class == v.audio_class) == v.matched for v in videos)
    assert any(not v.matched for v in videos)
    classes = stamps_sounds.available_classes()
    for v in videos:
        if not v.matched:
            assert v.audio_class != v.visual_class
        assert v.photo in {rel for rel, _ in classes[v.visual_class][1]}
        assert v.sound in {rel for rel, _ in classes[v.audio_class][2]}
    again = stamps_sounds.write_stamp_sound_videos(tmp_path / "b", 12, workers=2, **kw)  # in worker processes
    assert again == videos
    assert (tmp_path / "a" / "ground_truth.csv").read_text() == (tmp_path / "b" / "ground_truth.csv").read_text()
    for v in videos:
        with av.open(str(tmp_path / "a" / v.file)) as c:
            assert c.streams.video and c.streams.audio
            assert (c.streams.video[0].width, c.streams.video[0].height) == (96, 64)
            frames = sum(1 for _ in c.decode(video=0))
            assert abs(frames - round(v.duration_s * 6)) <= 1
        with av.open(str(tmp_path / "a" / v.file)) as c:
            samples = sum(f.samples for f in c.decode(audio=0))
            assert samples >= 0.9 * v.duration_s * c.streams.audio[0].rate
