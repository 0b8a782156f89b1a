"""CLIP, AST and CLAP through transformers: tiny random models saved with save_pretrained into a
temporary folder, loaded through exactly the user's path (build_profile + extractor options)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from acav_assets.core.features.base import ClipBatch
from acav_assets.core.features.profiles import build_profile

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    vision = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=4,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    # a full CLIPModel (what openai/clip-* folders hold) and a vision-only one
    clip = transformers.CLIPConfig(
        text_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=99,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=vision,
        projection_dim=16,
    )
    transformers.CLIPModel(clip).save_pretrained(root / "clip")
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        root / "clip"
    )
    transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(**vision)).save_pretrained(
        root / "clip_vision"
    )
    ast = transformers.ASTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=37,
        max_length=128,
        num_mel_bins=16,
    )
    transformers.ASTForAudioClassification(ast).save_pretrained(root / "ast")
    transformers.ASTFeatureExtractor(num_mel_bins=16, max_length=128).save_pretrained(root / "ast")
    clap = transformers.ClapAudioConfig(
        num_mel_bins=64,
        spec_size=256,
        hidden_size=32,
        patch_embeds_hidden_size=16,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        projection_dim=16,
        projection_hidden_size=16,
    )
    transformers.ClapAudioModelWithProjection(clap).save_pretrained(root / "clap")
    transformers.ClapFeatureExtractor(feature_size=64, sampling_rate=48_000).save_pretrained(root / "clap")
    return root


def _batch(n=3, seed=0):
    rng = np.random.default_rng(seed)
    frames = torch.from_numpy(rng.integers(0, 255, (n, 6, 40, 40, 3), dtype=np.uint8))
    audio = [torch.from_numpy((0.1 * rng.standard_normal(16_000 * s)).astype(np.float32)) for s in (10, 4, 10)[:n]]
    return ClipBatch([f"c{i}" for i in range(n)], frames, audio, 16_000)


@pytest.mark.parametrize("profile,audio", [("clip-clap", "audio/clap"), ("clip-ast", "audio/ast")])
def test_saved_checkpoints_load_through_the_profile_and_give_declared_layers(checkpoints, profile, audio):
    options = {
        "visual/clip": {"model": str(checkpoints / "clip"), "n_frames": 2},
        audio: {"model": str(checkpoints / audio.split("/")[1])},
    }
    extractors = build_profile(profile, "cpu", options)
    batch = _batch()
    for e in extractors:
        spaces = e.feature_spaces()
        assert [fs.name.rsplit("/", 1)[1] for fs in spaces][-1] == "embedding" and len(spaces) >= 3
        out = e.extract(batch)
        assert set(out) == {fs.name for fs in spaces}
        for fs in spaces:
            assert out[fs.name].shape == (3, fs.dim) and np.isfinite(out[fs.name]).all()
            assert out[fs.name].std(0).max() > 0, fs.name
        again = e.extract(batch)  # deterministic (eval mode, no dropout)
        assert all(np.allclose(out[k], again[k], atol=1e-5) for k in out)
    clip = extractors[0]
    assert [fs.name for fs in clip.feature_spaces()] == [f"visual/clip/layer{i}" for i in (1, 2, 3, 4)] + [
        "visual/clip/embedding"
    ]


def test_vision_only_clip_and_chosen_layers(checkpoints):
    (e, _) = build_profile(
        "clip-ast",
        "cpu",
        {
            "visual/clip": {"model": str(checkpoints / "clip_vision"), "layers": [0, 4]},
            "audio/ast": {"model": str(checkpoints / "ast")},
        },
    )
    assert [fs.name for fs in e.feature_spaces()] == [
        "visual/clip/layer0",
        "visual/clip/layer4",
        "visual/clip/embedding",
    ]
    with pytest.raises(ValueError, match="layers \\[9\\] do not exist"):
        build_profile(
            "clip-ast",
            "cpu",
            {
                "visual/clip": {"model": str(checkpoints / "clip_vision"), "layers": [9]},
                "audio/ast": {"model": str(checkpoints / "ast")},
            },
        )


def test_missing_wrong_or_broken_checkpoints_fail_clearly(checkpoints, tmp_path):
    from acav_assets.core.features.transformers_encoders import AST, CLAPAudio, CLIPImage

    with pytest.raises(ValueError, match="give the extractor option model="):
        CLIPImage()
    with pytest.raises(FileNotFoundError, match="not a saved model folder"):
        CLIPImage(model=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="holds a 'audio-spectrogram-transformer' model"):
        CLIPImage(model=str(checkpoints / "ast"))
    with pytest.raises(ValueError, match="holds a 'clip' model"):
        CLAPAudio(model=str(checkpoints / "clip"))
    # a config whose weights are absent
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((checkpoints / "ast" / "config.json").read_text())
    with pytest.raises(ValueError, match="cannot load"):
        AST(model=str(broken))
    # weights of another size under the right config
    cfg = json.loads((checkpoints / "ast" / "config.json").read_text())
    cfg["hidden_size"] = 48
    other = tmp_path / "other"
    (other).mkdir()
    for f in (checkpoints / "ast").iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit|cannot load"):
        AST(model=str(other))
