"""Extractors on CPU through the real pipeline: decode (PyAV) -> torch -> float32 matrices."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from acav_assets.core.clustering import KMeansConfig, fit_kmeans
from acav_assets.core.features.backbones import RandomWeightsWarning, VGGish
from acav_assets.core.features.base import ClipBatch, profile_feature_spaces, resolve_device
from acav_assets.core.features.embed import embed_clips
from acav_assets.core.features.profiles import PROFILES, build_profile
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.decode import DecodeConfig
from acav_assets.core.media.probe import probe_file

SMALL_NETS = {"visual/r2plus1d_18": {"n_frames": 4, "size": 32}}


def clip_items(folder, videos):
    items = []
    for v in videos:
        rec = probe_file(folder / v.file)
        (w,) = clip_windows(rec.video_id, rec.duration_s)
        items.append((w.clip_id, rec.path, w.start_s, w.end_s))
    return items


def purity(labels, truth) -> float:
    truth = np.asarray(truth)
    return sum(np.bincount(truth[labels == c]).max() for c in np.unique(labels)) / len(labels)


@pytest.fixture(scope="module")
def four_class_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("four_classes")
    return folder, write_demo_videos(folder, 48, n_classes=4, seed=11)


@pytest.fixture(scope="module")
def weightfree():
    return build_profile("weightfree", "cpu")


def test_shapes_match_declared_feature_spaces(demo_videos, weightfree):
    folder, videos = demo_videos
    items = clip_items(folder, videos[:5])
    with pytest.warns(RandomWeightsWarning):
        pretrained = build_profile("pretrained", "cpu", SMALL_NETS)
    for extractors in (weightfree, pretrained):
        spaces = profile_feature_spaces(extractors)
        assert len({fs.modality for fs in spaces}) == 2
        assert sum(fs.modality == "audio" for fs in spaces) == 5 == sum(fs.modality == "visual" for fs in spaces)
        res = embed_clips(items, extractors, batch_size=2)
        assert res.clip_ids == [i[0] for i in items] and not res.failed
        assert set(res.vectors) == {fs.name for fs in spaces}
        for fs in spaces:
            v = res.vectors[fs.name]
            assert v.shape == (5, fs.dim) and v.dtype == np.float32 and np.isfinite(v).all()
            assert v.std(0).max() > 0, f"{fs.name} does not vary across clips"


def test_deterministic_and_batch_equals_one_by_one(demo_videos, weightfree):
    folder, videos = demo_videos
    items = clip_items(folder, videos[:6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        pretrained = build_profile("pretrained", "cpu", SMALL_NETS)
    for extractors in (weightfree, pretrained):
        a = embed_clips(items, extractors, batch_size=4)
        b = embed_clips(items, extractors, batch_size=4, decode_workers=1)
        one = embed_clips(items, extractors, batch_size=1)
        for name in a.vectors:
            assert np.array_equal(a.vectors[name], b.vectors[name]), name
            np.testing.assert_allclose(a.vectors[name], one.vectors[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_weightfree_profile_separates_generated_classes(four_class_videos, weightfree):
    folder, videos = four_class_videos
    res = embed_clips(clip_items(folder, videos), weightfree)
    scores = {}
    for name, v in res.vectors.items():
        truth = [x.visual_class if name.startswith("visual") else x.audio_class for x in videos]
        labels, _ = fit_kmeans(v, name, KMeansConfig(k=4, nredo=3)).assign(v)
        scores[name] = purity(labels, truth)
    assert min(scores.values()) >= 0.6, scores
    assert np.mean(list(scores.values())) >= 0.85, scores
    assert scores["audio/logmel/spectrum"] >= 0.95, scores


def test_weights_load_from_a_local_file(tmp_path, demo_videos):
    folder, videos = demo_videos
    items = clip_items(folder, videos[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        trained = VGGish(seed=1)
        other = VGGish(seed=2)
    path = tmp_path / "vggish_state.pt"
    torch.save({"state_dict": trained.net.state_dict()}, path)
    loaded = VGGish(weights=str(path), seed=2)
    assert loaded.weights_source == str(path)
    got = embed_clips(items, [loaded]).vectors
    ref = embed_clips(items, [trained]).vectors
    rnd = embed_clips(items, [other]).vectors
    for name in got:
        assert np.allclose(got[name], ref[name], atol=1e-5), name
        assert not np.allclose(got[name], rnd[name]), name


def test_missing_or_wrong_weights_fail_clearly(tmp_path):
    missing = tmp_path / "nope" / "r2p1d.pth"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        build_profile("pretrained", "cpu", {"visual/r2plus1d_18": {"weights": str(missing)}})
    with pytest.raises(FileNotFoundError, match="torch cache"):
        build_profile("pretrained", "cpu", {"visual/r2plus1d_18": {"weights": "cache", "n_frames": 4}})
    wrong = tmp_path / "wrong.pt"
    torch.save({"layer.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ValueError, match="do not fit the architecture"):
        VGGish(weights=str(wrong))
    with pytest.raises(ValueError, match="unknown extractor profile"):
        build_profile("imagenet-please")
    with pytest.raises(ValueError, match="not in profile"):
        build_profile("weightfree", "cpu", {"visual/r2plus1d_18": {}})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            resolve_device("cuda")
        assert resolve_device(None).type == "cpu"


def test_bad_clips_are_reported_not_raised(demo_videos, bad_inputs, weightfree):
    folder, videos = demo_videos
    bad_folder, _ = bad_inputs
    items = clip_items(folder, videos[:3])
    items.insert(1, ("broken", str(bad_folder / "random_bytes.mp4"), 0.0, 10.0))
    seen = []
    res = embed_clips(items, weightfree, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert res.clip_ids == [items[0][0], items[2][0], items[3][0]]
    assert "random_bytes.mp4" in res.failed["broken"]
    assert seen[-1] == (4, 4)
    assert all(v.shape[0] == 3 for v in res.vectors.values())


def test_profiles_are_registered():
    assert set(PROFILES) >= {"weightfree", "pretrained"}
    assert DecodeConfig().sample_rate == 16_000


def test_vggish_accepts_the_torchvggish_layout(tmp_path):
    """A state dict in torchvggish's names (features.N / embeddings.N, plus its PCA parameters)
    loads into our VGGish and gives the same features as the original."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        ours = VGGish(seed=4)
    names = {
        "block1.0": "features.0",
        "block2.0": "features.3",
        "block3.0": "features.6",
        "block3.2": "features.8",
        "block4.0": "features.11",
        "block4.2": "features.13",
    }
    state = {}
    for k, v in ours.net.state_dict().items():
        prefix, _, leaf = k.rpartition(".")
        state[f"{names.get(prefix, prefix)}.{leaf}"] = v
    state["pproc._pca_matrix"], state["pproc._pca_means"] = torch.eye(128), torch.zeros(128, 1)
    path = tmp_path / "vggish-10086976.pth"
    torch.save(state, path)
    loaded = VGGish(weights=str(path))
    rng = np.random.default_rng(0)
    batch = ClipBatch(
        ["a", "b"],
        torch.zeros(2, 1, 8, 8, 3, dtype=torch.uint8),
        [torch.from_numpy(rng.standard_normal(32_000).astype(np.float32) * 0.1) for _ in range(2)],
        16_000,
    )
    a, b = ours.extract(batch), loaded.extract(batch)
    assert all(np.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_slowfast_loads_a_model_zoo_checkpoint(tmp_path, demo_videos):
    from acav_assets.core.features.backbones import SlowFast

    small = {"depth": 18, "size": 64, "n_frames": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        trained = SlowFast(seed=1, **small)
    path = tmp_path / "SLOWFAST_8x8_R18.pyth"
    torch.save({"model_state": trained.net.state_dict(), "epoch": 1}, path)  # pytorchvideo's checkpoint layout
    (loaded,) = [
        e
        for e in build_profile(
            "reference", "cpu", {"visual/slowfast_r50": {"weights": str(path), **small}, "audio/vggish": {}}
        )
        if e.name.startswith("visual")
    ]
    assert [fs.name.rsplit("/", 1)[1] for fs in loaded.feature_spaces()] == ["res2", "res3", "res4", "res5", "logits"]
    folder, videos = demo_videos
    items = clip_items(folder, videos[:2])
    got, ref = embed_clips(items, [loaded]).vectors, embed_clips(items, [trained]).vectors
    for fs in loaded.feature_spaces():
        assert got[fs.name].shape == (2, fs.dim) and np.allclose(got[fs.name], ref[fs.name], atol=1e-4), fs.name
    with pytest.raises(ValueError, match="do not fit"):
        SlowFast(weights=str(path), depth=50, size=64, n_frames=16)
