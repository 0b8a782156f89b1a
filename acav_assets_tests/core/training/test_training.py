"""The downstream harness: a small comparison end to end (export, training from shards, probes),
repeatability per seed, training that never reads labels, and the curriculum's shifted sounds.

The warehouse here is written directly (a ``clips`` table and a ``curated_subset`` of the clips
whose sound matches), so no curation runs: these tests are about what happens after it.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile

import numpy as np
import pytest
import torch

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.shards import ExportConfig
from acav_assets.core.generators.demo import read_ground_truth
from acav_assets.core.media.encode import write_video
from acav_assets.core.training import TrainConfig, compare_training_sets, format_comparison, train_av_model
from acav_assets.core.training.compare import export_clip_rows, shard_paths
from acav_assets.core.training.data import SAMPLE_KEYS, ShardWindows, draw_offsets
from acav_assets.core.training.probe import ProbeConfig, linear_probe_accuracy

TINY = TrainConfig(steps=3, batch_size=4, workers=0, windows_per_clip=2, shuffle_buffer=8, hard_from=0.5)
EXPORT = ExportConfig(shard_max_clips=4, workers=1, cut=CutConfig(sample_rate=16_000, short_side=32))


@pytest.fixture(scope="module")
def tiny(tiny_curation):
    """The shared tiny curation (``conftest.tiny_curation``)."""
    return tiny_curation


def test_a_tiny_comparison_gives_every_training_set_per_seed_with_sane_metrics(tiny):
    base, landing, held, wh, videos = tiny
    messages = []
    rows = compare_training_sets(
        wh,
        landing,
        held / "probe.csv",
        probe_root=held,
        truth_csv=landing / "batch_001" / "ground_truth.csv",
        seeds=(0,),
        config=TINY,
        probe=ProbeConfig(windows=2, shots=1, repeats=3),
        work_dir=base / "work",
        export_config=EXPORT,
        progress=messages.append,
    )
    n_matched = sum(v.matched for v in videos)
    sizes = {r["training_set"]: r["clips"] for r in rows}
    assert sizes == {"curated": n_matched, "random": n_matched, "all": len(videos), "matched": n_matched}
    for r in rows:
        assert {"training_set", "seed", "audio_probe", "visual_probe", "retrieval_r1"} <= r.keys()
        assert r["seed"] == 0
        for m in ("audio_probe", "visual_probe", "retrieval_r1", "retrieval_class_r1"):
            assert 0.0 <= r[m] <= 1.0, (r["training_set"], m, r[m])
        assert r["clips_per_s"] > 0
    # every set was exported through the export's writer, each into its own folder
    folders = sorted(p.name.split("-")[0] for p in (base / "work").iterdir())
    assert folders == ["all", "curated", "matched", "random"]
    assert any("training on curated" in m for m in messages)
    table = format_comparison(rows)
    assert "| curated |" in table and "±" not in table  # one seed: no spread to show


def test_training_is_repeatable_per_seed_on_the_cpu(tiny, tmp_path):
    base, landing, held, wh, videos = tiny
    rows = wh.read("clips")
    export_clip_rows(rows, landing, tmp_path / "shards", selection_id="t", config=EXPORT)
    shards = shard_paths(tmp_path / "shards")
    assert len(shards) >= 2
    a = train_av_model(shards, TINY, seed=3)
    b = train_av_model(shards, TINY, seed=3)
    c = train_av_model(shards, TINY, seed=4)
    assert a.losses == b.losses and len(a.losses) == TINY.steps
    assert a.hard_steps == TINY.steps - round(TINY.hard_from * TINY.steps) > 0
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.losses != c.losses  # another seed: other weights and another data order


def test_the_pretrained_picture_stream_trains_its_head_and_leaves_the_imagenet_network_as_shipped(tiny, tmp_path):
    """``visual_backbone="efficientnet_lite0"``: the frames go through the packaged ImageNet
    network, which no step changes (weights and batch-norm statistics as shipped, eval mode even
    while the model trains), while the temporal conv and projection on top do train; the model
    is saved and loaded with its backbone; too small a picture is refused before training."""
    import dataclasses

    from acav_assets.core.training.model import PretrainedVisualEncoder
    from acav_assets.core.training.train import build_model, load_model, save_model

    with pytest.raises(ValueError, match="at least 64x64"):
        TrainConfig(visual_backbone="efficientnet_lite0")  # the default 32x32 pictures
    base, landing, held, wh, videos = tiny
    export_clip_rows(wh.read("clips"), landing, tmp_path / "shards", selection_id="t", config=EXPORT)
    config = dataclasses.replace(TINY, visual_backbone="efficientnet_lite0", size=64, n_frames=4)
    trained = train_av_model(shard_paths(tmp_path / "shards"), config, seed=0).model
    torch.manual_seed(0)  # the weights the training started from
    fresh = build_model(config)
    assert isinstance(trained.visual, PretrainedVisualEncoder)
    for (name, a), b in zip(trained.visual.trunk.state_dict().items(), fresh.visual.trunk.state_dict().values()):
        assert torch.equal(a, b), f"the ImageNet network changed: {name}"
    changed = [
        name
        for (name, a), b in zip(trained.state_dict().items(), fresh.state_dict().values())
        if a.is_floating_point() and not torch.equal(a, b)
    ]
    assert any(n.startswith("visual.head") for n in changed) and any(n.startswith("visual.temporal") for n in changed)
    trained.train()
    assert trained.visual.temporal.training and not trained.visual.trunk.training
    trained.eval()
    save_model(trained, config, tmp_path / "model.pt")
    loaded, loaded_config = load_model(tmp_path / "model.pt")
    assert loaded_config.visual_backbone == "efficientnet_lite0"
    frames = torch.randint(0, 256, (2, 4, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(loaded.visual(frames), trained.visual(frames), atol=1e-6)


def test_training_never_reads_labels(tiny, tmp_path):
    """The loader yields media and the clip id only, even from shards whose samples carry labels
    (a ``.cls`` member, labels in the JSON); and no label file beside the shards or in the
    landing area is opened: they are links to nowhere, so opening one would fail."""
    base, landing, held, wh, videos = tiny
    out = tmp_path / "shards"
    export_clip_rows(wh.read("clips"), landing, out, selection_id="t", config=EXPORT)
    # one more shard whose samples carry labels, as a user's own shards might
    truth = read_ground_truth(landing / "batch_001" / "ground_truth.csv")
    with tarfile.open(shard_paths(out)[0]) as src, tarfile.open(out / "clips-000099.tar", "w") as dst:
        for m in src:
            if m.name.endswith(".mp4"):
                data = src.extractfile(m).read()
                key = "labelled" + m.name.split(".")[0]
                members = {
                    f"{key}.mp4": data,
                    f"{key}.cls": b"3",
                    f"{key}.json": b'{"visual_label": "dog", "audio_label": "dog", "matched": true}',
                }
                for name, payload in members.items():
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    dst.addfile(info, io.BytesIO(payload))
    traps = [out / "labels.csv", out / "ground_truth.csv", landing / "labels.csv"]
    for trap in traps:
        os.symlink(tmp_path / "nowhere" / trap.name, trap)
    opened: list[str] = []
    recording = [True]

    def audit(event, args):
        if recording[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # an audit hook cannot be removed: it records only while recording
    shards = shard_paths(out)
    ds = ShardWindows(
        shards, seed=0, window_s=2.0, n_frames=8, size=32, sample_rate=16_000, min_shift_s=1.0, shuffle_buffer=4
    )
    samples = [s for _, s in zip(range(3 * len(videos)), iter(ds))]
    result = train_av_model(shards, TINY, seed=0)  # workers=0: every file it opens, it opens here
    recording[0] = False
    assert samples and all(set(s) == SAMPLE_KEYS for s in samples)
    assert any(s["clip_id"].startswith("labelled") for s in samples)  # the labelled shard was read ...
    for s in samples:  # ... for its media only
        assert isinstance(s["clip_id"], str) and s["frames"].dtype == torch.uint8 and s["audio"].ndim == 1
    assert len(result.losses) == TINY.steps
    ours = [p for p in opened if str(base) in p or str(tmp_path) in p]
    assert ours and set(ours) <= set(shards), sorted(set(ours) - set(shards))
    assert truth  # the labels exist; the training simply never asked for them


def test_the_curriculum_takes_the_hard_negative_sound_at_least_one_second_away(tmp_path):
    rng = np.random.default_rng(0)
    for duration in rng.uniform(3.0, 12.0, 500):
        t, s = draw_offsets(duration, 2.0, 1.0, rng)
        assert 0.0 <= t <= duration - 2.0 + 1e-9
        if s is not None:
            assert abs(s - t) >= 1.0 - 1e-9 and 0.0 <= s <= duration - 2.0 + 1e-9
    assert draw_offsets(2.5, 2.0, 1.0, rng)[1] is None  # no room for a second window 1 s away

    # a clip whose loudness grows with time tells, from the sound alone, when a window starts
    sr, fps, seconds = 16_000, 10, 10.0
    t = np.arange(int(seconds * sr)) / sr
    level = 0.05 + 0.09 * t
    audio = (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    frames = np.full((int(seconds * fps), 32, 32, 3), 128, np.uint8)
    (tmp_path / "land" / "b").mkdir(parents=True)
    write_video(tmp_path / "land" / "b" / "ramp.mp4", frames, fps, audio, sr)
    import polars as pl

    row = pl.DataFrame(
        [{"clip_id": "ramp", "video_id": "v", "batch": "b", "path": "b/ramp.mp4", "start_s": 0.0, "end_s": 10.0}]
    )
    export_clip_rows(row, tmp_path / "land", tmp_path / "shards", selection_id="t", config=EXPORT)
    ds = ShardWindows(
        shard_paths(tmp_path / "shards"),
        seed=1,
        window_s=2.0,
        n_frames=8,
        size=32,
        sample_rate=sr,
        min_shift_s=1.0,
        windows_per_clip=4,
    )

    def start_of(window: np.ndarray) -> float:  # the mean level over [s, s + 2) is 0.05 + 0.09 (s + 1)
        return (np.sqrt(2) * np.sqrt(np.mean(window.astype(np.float64) ** 2)) - 0.05) / 0.09 - 1.0

    samples = [s for _, s in zip(range(12), iter(ds))]
    assert all(s["has_shift"] for s in samples)
    for s in samples:
        heard, heard_shift = start_of(s["audio"].numpy()), start_of(s["audio_shift"].numpy())
        assert abs(heard - s["start_s"]) < 0.15 and abs(heard_shift - s["shift_s"]) < 0.15
        assert abs(heard_shift - heard) >= 0.85  # the sound itself is from >= 1 s away
    assert len({round(s["start_s"], 3) for s in samples}) > 6  # windows differ within and across epochs


def test_the_linear_probe_separates_what_is_separable_and_not_what_is_not():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 30)
    x = rng.standard_normal((120, 16)) + 4.0 * np.eye(16)[y]
    assert linear_probe_accuracy(x, y, folds=5) > 0.95
    assert linear_probe_accuracy(rng.standard_normal((120, 16)), y, folds=5) < 0.5
