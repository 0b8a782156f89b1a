"""Probing, clip windows, window decoding and the generators, on real files decoded by PyAV."""

from __future__ import annotations

import hashlib
import math
import os
import shutil

import numpy as np
import pytest

from acav_assets.core.generators.demo import read_ground_truth, write_demo_videos
from acav_assets.core.media.clips import ClipConfig, clip_windows, detect_shots
from acav_assets.core.media.decode import DecodeConfig, DecodeError, decode_clip, iter_decoded
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.probe import STATUSES, ProbeConfig, list_media_files, probe_file, probe_files

# --- probing -------------------------------------------------------------------------------


def test_every_bad_input_gets_its_status_and_a_readable_error(bad_inputs):
    folder, expected = bad_inputs
    files = list_media_files(folder)
    assert sorted(os.path.basename(f) for f in files) == sorted(expected)
    records = probe_files(files, ProbeConfig(allowed_roots=(str(folder),)), root=folder)
    assert len(records) == len(files)  # one record per file, whatever happened
    got = {os.path.basename(r.path): r for r in records}
    for name, status in expected.items():
        rec = got[name]
        assert rec.status == status, f"{name}: {rec.status} ({rec.error})"
        assert rec.status in STATUSES
        if status != "ok":
            assert len(rec.error) > 8 and "\n" not in rec.error, f"{name}: unhelpful error {rec.error!r}"
        else:
            assert rec.error == ""
    assert "good_reference.mp4" in got["zz_duplicate_copy.mp4"].error
    assert got["zz_symlink.mp4"].duplicate_of == "good_reference.mp4"
    assert "truncated" in got["truncated_faststart.mp4"].error
    assert "7680x4320" in got["huge_frame.mp4"].error
    assert "FIFO" in got["fifo.mp4"].error


def test_probe_matches_what_the_generator_wrote(demo_videos):
    folder, videos = demo_videos
    truth = read_ground_truth(folder / "ground_truth.csv")
    assert len(truth) == len(videos) == 24
    for v in videos:
        rec = probe_file(folder / v.file)
        assert rec.status == "ok", rec.error
        assert abs(rec.duration_s - truth[v.file].duration_s) <= 1 / 12 + 1e-6
        assert (rec.width, rec.height, rec.fps) == (96, 64, 12.0)
        assert (rec.video_codec, rec.audio_codec, rec.sample_rate, rec.channels) == ("h264", "aac", 22050, 1)
        assert rec.video_start_s == 0.0


def test_ids_are_content_derived_and_stable(demo_videos, tmp_path):
    folder, videos = demo_videos
    src = folder / videos[0].file
    a = probe_file(src)
    assert probe_file(src).video_id == a.video_id  # re-run
    renamed = tmp_path / "a completely different name.mp4"
    shutil.copyfile(src, renamed)
    assert probe_file(renamed).video_id == a.video_id  # renamed copy, other folder
    assert probe_file(folder / videos[1].file).video_id != a.video_id
    # a renamed copy in the same batch, or a file seen in an earlier batch, is a duplicate
    recs = probe_files([src, renamed], root=folder)
    assert [r.status for r in recs] == ["duplicate", "ok"] or [r.status for r in recs] == ["ok", "duplicate"]
    (again,) = probe_files([renamed], known={a.video_id: "batch_001/" + videos[0].file})
    assert again.status == "duplicate" and "batch_001/" in again.error


def test_duration_filter_gives_its_own_statuses(demo_videos):
    folder, videos = demo_videos
    longest = max(videos, key=lambda v: v.duration_s)
    rec = probe_file(folder / longest.file, ProbeConfig(max_duration_s=15.0))
    assert rec.status == "too_long" and "maximum of 15" in rec.error
    rec = probe_file(folder / longest.file, ProbeConfig(min_duration_s=30, max_duration_s=597))  # reference range
    assert rec.status == "too_short" and "minimum of 30" in rec.error
    with pytest.raises(ValueError, match="below min_duration_s"):
        ProbeConfig(min_duration_s=10, max_duration_s=5)


# --- clip windows --------------------------------------------------------------------------


def test_clip_windows_follow_the_reference():
    cfg = ClipConfig()
    assert clip_windows("v", 1.5, cfg) == []
    (short,) = clip_windows("v", 5.0, cfg)
    assert (short.start_s, short.end_s) == (0.0, 5.0)
    (centred,) = clip_windows("v", 20.0, cfg)
    assert (centred.start_s, centred.end_s) == (5.0, 15.0)
    assert centred.clip_id == "v_5000_15000" == clip_windows("v", 20.0, cfg)[0].clip_id
    with pytest.raises(ValueError):
        ClipConfig(min_clip_s=12)


def _shot_video(path, colours, lengths, fps=10.0):
    rng = np.random.default_rng(0)
    frames = []
    for colour, length in zip(colours, lengths):
        block = np.empty((int(length * fps), 64, 96, 3), np.uint8)
        block[:] = colour
        block += rng.integers(0, 20, block.shape, dtype=np.uint8)
        frames.append(block)
    total = sum(lengths)
    write_video(path, np.concatenate(frames), fps, np.zeros(int(total * 16000), np.float32) + 0.01, 16000)
    return total


def test_shot_detection_places_windows_on_distinct_shots(tmp_path):
    path = tmp_path / "three_shots.mp4"
    total = _shot_video(path, [(200, 30, 30), (30, 30, 200), (30, 200, 30), (200, 30, 30)], [14, 14, 14, 4])
    shots = detect_shots(path, total)
    starts = [round(s.start_s) for s in shots]
    assert starts == [0, 14, 28, 42]
    windows = clip_windows("v", total, ClipConfig(max_clips=3), shots)
    assert len(windows) == 3
    for w in windows:  # each window inside one shot, none overlapping
        assert any(s.start_s - 1e-6 <= w.start_s and w.end_s <= s.end_s + 1e-6 for s in shots), w
    assert all(a.end_s <= b.start_s for a, b in zip(windows, windows[1:]))
    # the short fourth shot repeats the first one's colours: the three distinct shots win
    assert [round(w.start_s) for w in windows] == [2, 16, 30]
    # no shots known: one centred window
    assert len(clip_windows("v", total, ClipConfig(max_clips=3))) == 1


# --- decoding ------------------------------------------------------------------------------


def _index_video(path, n, fps, **kw):
    """Each frame's colour encodes its index; audio frequency encodes the second."""
    idx = np.arange(n)
    frames = np.empty((n, 64, 96, 3), np.uint8)
    frames[..., 0] = (20 * (idx % 12) + 10)[:, None, None]
    frames[..., 1] = (20 * ((idx // 12) % 12) + 10)[:, None, None]
    frames[..., 2] = (20 * (idx // 144) + 10)[:, None, None]
    sr = 44100
    t = np.arange(int(n / fps * sr)) / sr
    freq = 250.0 * (1 + np.floor(t) % 8)
    audio = (0.5 * np.sin(2 * np.pi * np.cumsum(freq) / sr)).astype(np.float32)
    write_video(path, frames, fps, audio, sr, **kw)


def _frame_index(img):
    r, g, b = (float(img[..., c].mean()) for c in range(3))
    return int(round((r - 10) / 20)) + 12 * int(round((g - 10) / 20)) + 144 * int(round((b - 10) / 20))


def _dominant_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.fft.rfftfreq(x.size, 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("suffix,offset", [(".mp4", 0.0), (".ts", 3.7)])  # a stream starting at 3.7 s
def test_decoded_frames_and_audio_are_those_at_the_window_timestamps(tmp_path, suffix, offset):
    fps = 10.0
    path = tmp_path / f"index{suffix}"
    _index_video(path, 300, fps, time_offset_s=offset)
    rec = probe_file(path)
    assert rec.status == "ok", rec.error
    assert abs(rec.video_start_s - offset) < 0.05
    cfg = DecodeConfig(n_frames=16, short_side=32)
    start, end = 12.5, 22.5
    clip = decode_clip(path, start, end, cfg)
    assert clip.frames.shape == (16, 32, 32, 3) and clip.frames.dtype == np.uint8
    targets = start + (np.arange(16) + 0.5) * (end - start) / 16
    expected = np.floor(targets * fps + 1e-9).astype(int)
    assert [_frame_index(f) for f in clip.frames] == expected.tolist()
    assert np.allclose(clip.frame_times, expected / fps, atol=1e-6)
    # audio: 16 kHz mono, aligned — the tone of second 12 during [12.5, 13), of second 13 after
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (160_000,)
    assert clip.audio_pad_s == 0.0
    sr = clip.sample_rate
    assert abs(_dominant_freq(clip.audio[int(0.05 * sr) : int(0.45 * sr)], sr) - 250 * (1 + 12 % 8)) < 30
    assert abs(_dominant_freq(clip.audio[int(0.55 * sr) : int(1.45 * sr)], sr) - 250 * (1 + 13 % 8)) < 30


def test_window_past_the_end_is_padded_and_recorded(tmp_path):
    path = tmp_path / "short.mp4"
    _index_video(path, 60, 10.0)  # 6 s
    clip = decode_clip(path, 2.0, 12.0, DecodeConfig(n_frames=10, short_side=32))
    assert clip.frames.shape[0] == 10
    assert clip.video_pad_frames == 6  # targets at 6.5 .. 11.5 s are past the last frame (6 s video)
    assert _frame_index(clip.frames[-1]) == 59
    assert 5.5 < clip.audio_pad_s < 6.5
    assert np.all(clip.audio[-int(5.5 * 16000) :] == 0)


def test_variable_frame_rate_frames_follow_timestamps(bad_inputs):
    folder, _ = bad_inputs
    clip = decode_clip(folder / "variable_fps.mp4", 2.0, 12.0, DecodeConfig(n_frames=32, short_side=32))
    targets = 2.0 + (np.arange(32) + 0.5) * 10 / 32
    gaps = targets - clip.frame_times
    assert np.all(gaps >= -1e-6) and np.all(gaps < 0.21)  # the frame on screen at each target
    assert np.all(np.diff(clip.frame_times) >= 0)


def test_decode_shapes_batch_of_generated_clips_and_errors(demo_videos, bad_inputs):
    folder, videos = demo_videos
    cfg = DecodeConfig()
    items = []
    for v in videos[:4]:
        rec = probe_file(folder / v.file)
        (w,) = clip_windows(rec.video_id, rec.duration_s)
        items.append((w.clip_id, str(folder / v.file), w.start_s, w.end_s))
    bad_folder, _ = bad_inputs
    items.insert(2, ("broken", str(bad_folder / "random_bytes.mp4"), 0.0, 10.0))
    out = list(iter_decoded(items, cfg))
    assert [cid for cid, _, _ in out] == [i[0] for i in items]
    for cid, clip, err in out:
        if cid == "broken":
            assert clip is None and "random_bytes.mp4" in err
        else:
            assert err == "" and clip.frames.shape == (32, 112, 112, 3) and clip.audio.shape == (160_000,)
            assert clip.frames.std() > 5 and np.abs(clip.audio).mean() > 0.01  # real content
    with pytest.raises(DecodeError):
        decode_clip(bad_folder / "random_bytes.mp4", 0, 10)
    with pytest.raises(ValueError):
        decode_clip(folder / videos[0].file, 5, 5)


# --- generators ----------------------------------------------------------------------------


def test_generator_is_deterministic_and_plants_the_requested_share(tmp_path):
    a = write_demo_videos(tmp_path / "a", 10, seed=5, matched_fraction=0.3, workers=1)
    b = write_demo_videos(tmp_path / "b", 10, seed=5, matched_fraction=0.3, workers=2)
    assert a == b
    assert sum(v.matched for v in a) == 3
    assert all((v.audio_class == v.visual_class) == v.matched for v in a)

    def digest(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    assert [digest(tmp_path / "a" / v.file) for v in a] == [digest(tmp_path / "b" / v.file) for v in b]
    with pytest.raises(ValueError):
        write_demo_videos(tmp_path / "c", 3, n_classes=99)


def test_generated_audio_carries_its_class_pitch(demo_videos):
    from acav_assets.core.generators.demo import _PITCHES, _TIMBRES

    folder, videos = demo_videos
    checked = 0
    for v in videos:
        if _TIMBRES[v.audio_class] not in ("sine", "bell"):
            continue
        rec = probe_file(folder / v.file)
        clip = decode_clip(folder / v.file, 0.0, min(4.0, rec.duration_s))
        f = _dominant_freq(clip.audio, clip.sample_rate)
        assert abs(f / _PITCHES[v.audio_class] - 1) < 0.06, (v, f)
        checked += 1
    assert checked >= 2
    assert math.isfinite(f)
