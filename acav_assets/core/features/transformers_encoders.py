"""Encoders that people use, loaded with Hugging Face ``transformers`` from a local folder.

- ``visual/clip``: a CLIP image encoder on sampled frames (a ``CLIPModel`` or
  ``CLIPVisionModelWithProjection`` checkpoint, e.g. a saved ``openai/clip-vit-base-patch32``);
- ``audio/ast``: the Audio Spectrogram Transformer (e.g. a saved
  ``MIT/ast-finetuned-audioset-10-10-0.4593``), its own feature extractor at 16 kHz;
- ``audio/clap``: the CLAP audio encoder (e.g. a saved ``laion/clap-htsat-unfused``), its own
  feature extractor at 48 kHz (the clip is resampled).

``model`` is a folder written by ``save_pretrained`` (``config.json`` + weights, and the
processor's ``preprocessor_config.json``), loaded with ``local_files_only=True``: nothing
downloads. Several layers each: the hidden states at a quarter, half, three quarters and the
end of the network (``layers`` picks others), averaged over tokens (or over the spectrogram
grid for CLAP's Swin stages) and over frames / the clip, plus the projected embedding; named
``<modality>/<model>/layer<i>`` and ``<modality>/<model>/embedding``. A folder that is missing,
holds another model type or weights that do not fit is an error naming the folder and what
was expected (a model never silently runs half-initialised). On CUDA the networks run in half
precision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from acav_assets.core.features.base import ClipBatch, Extractor, FeatureSpace, prepare_network

__all__ = ["AST", "CLAPAudio", "CLIPImage", "load_local_model"]

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_local_model(cls, model: str | None, *, name: str, model_types: Sequence[str], example: str):
    """``cls.from_pretrained(model)`` offline, with every failure turned into a clear error."""
    if not model:
        raise ValueError(f"{name}: give the extractor option model=<folder> (a save_pretrained folder of {example})")
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{name}: {path} is not a saved model folder (expected config.json and weights "
            f"written by save_pretrained, e.g. of {example})"
        )
    kind = json.loads((path / "config.json").read_text()).get("model_type")
    if kind not in model_types:
        raise ValueError(f"{name}: {path} holds a {kind!r} model, expected one of {list(model_types)} ({example})")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        net, info = cls.from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ValueError(f"{name}: cannot load {path} ({example}): {str(exc)[:400]}") from None
    if info.get("missing_keys") or info.get("mismatched_keys"):
        keys = list(info.get("missing_keys") or []) + [
            k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or []
        ]
        raise ValueError(f"{name}: the weights in {path} do not fit the model, e.g. {sorted(keys)[:5]}")
    return net, path


def _pick(n_states: int, layers: Sequence[int] | None) -> list[int]:
    """Hidden-state indices: given ones, or a quarter / half / three quarters / the end."""
    last = n_states - 1
    chosen = list(layers) if layers else sorted({max(1, round(last * f)) for f in (0.25, 0.5, 0.75, 1.0)})
    bad = [i for i in chosen if not 0 <= i <= last]
    if bad:
        raise ValueError(f"layers {bad} do not exist: the model has hidden states 0..{last}")
    return chosen


def _pool(h: torch.Tensor) -> torch.Tensor:
    """(B, tokens, D) -> mean over tokens; (B, C, H, W) -> mean over the grid."""
    return h.float().mean(1) if h.dim() == 3 else h.float().mean((2, 3))


class _TransformersEncoder(Extractor):
    """Shared plumbing: load, pick layers, find each tap's dimension with one probe input."""

    def _setup(self, net, layers):
        self.net = prepare_network(net, self.device)
        probe = self._forward_probe()
        self.layers = _pick(len(probe["hidden"]), layers)
        self.dims = {f"layer{i}": _pool(probe["hidden"][i]).shape[1] for i in self.layers}
        self.dims["embedding"] = probe["embedding"].shape[1]

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{tap}", dim) for tap, dim in self.dims.items()]

    def _taps(self, out) -> dict[str, torch.Tensor]:
        taps = {f"{self.name}/layer{i}": _pool(out["hidden"][i]) for i in self.layers}
        taps[f"{self.name}/embedding"] = out["embedding"].float()
        return taps

    @property
    def _dtype(self):
        return next(self.net.parameters()).dtype


class CLIPImage(_TransformersEncoder):
    """CLIP image encoder on ``n_frames`` frames per clip (see module docs)."""

    name = "visual/clip"

    def __init__(
        self,
        device="cpu",
        model: str | None = None,
        layers: Sequence[int] | None = None,
        n_frames: int = 4,
        batch_frames: int = 64,
    ):
        super().__init__(device)
        from transformers import CLIPVisionModelWithProjection

        net, path = load_local_model(
            CLIPVisionModelWithProjection,
            model,
            name=self.name,
            model_types=("clip", "clip_vision_model"),
            example="openai/clip-vit-base-patch32",
        )
        self.n_frames, self.batch_frames = n_frames, batch_frames
        self.size = net.config.image_size
        mean, std = _CLIP_MEAN, _CLIP_STD
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._setup(net, layers)

    def _run(self, x: torch.Tensor) -> dict:
        out = self.net(pixel_values=x.to(self._dtype), output_hidden_states=True)
        return {"hidden": out.hidden_states, "embedding": out.image_embeds}

    def _forward_probe(self):
        return self._run(torch.zeros(1, 3, self.size, self.size, device=self.device))

    def _extract(self, batch: ClipBatch):
        frames = batch.frames
        b, t = frames.shape[:2]
        idx = torch.linspace(0, t - 1, min(self.n_frames, t), device=frames.device).round().long()
        x = frames[:, idx].reshape(-1, *frames.shape[2:]).permute(0, 3, 1, 2)
        parts: dict[str, list[torch.Tensor]] = {}
        for chunk in x.split(self.batch_frames):
            c = chunk.float().div_(255.0)
            h, w = c.shape[-2:]
            s = min(h, w)  # centre square, then the model's size
            c = c[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            c = F.interpolate(c, size=(self.size, self.size), mode="bicubic", align_corners=False, antialias=True)
            for k, v in self._taps(self._run((c - self.mean) / self.std)).items():
                parts.setdefault(k, []).append(v)
        n = idx.numel()
        return {k: torch.cat(v).reshape(b, n, -1).mean(1) for k, v in parts.items()}


class _AudioEncoder(_TransformersEncoder):
    """Audio encoders whose feature extractor (numpy, CPU) comes with the checkpoint."""

    model_rate: int = 16_000

    def _load_features(self, path: Path):
        from transformers import AutoFeatureExtractor

        try:
            self.features = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{self.name}: {path} has no usable preprocessor_config.json (save the feature "
                f"extractor with save_pretrained next to the model): {str(exc)[:300]}"
            ) from None
        self.model_rate = int(getattr(self.features, "sampling_rate", self.model_rate))

    def _inputs(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _forward_probe(self):
        return self._run(self._inputs([np.zeros(self.model_rate, np.float32)]))

    def _extract(self, batch: ClipBatch):
        waves = []
        for a in batch.audio:
            a = a.float().cpu()
            if batch.sample_rate != self.model_rate:
                a = torchaudio.functional.resample(a, batch.sample_rate, self.model_rate)
            waves.append(a.numpy() if a.numel() else np.zeros(self.model_rate // 10, np.float32))
        return self._taps(self._run(self._inputs(waves)))


class AST(_AudioEncoder):
    """Audio Spectrogram Transformer (see module docs)."""

    name = "audio/ast"

    def __init__(self, device="cpu", model: str | None = None, layers: Sequence[int] | None = None):
        super().__init__(device)
        from transformers import ASTModel

        net, path = load_local_model(
            ASTModel,
            model,
            name=self.name,
            model_types=("audio-spectrogram-transformer",),
            example="MIT/ast-finetuned-audioset-10-10-0.4593",
        )
        self._load_features(path)
        self._setup(net, layers)

    def _inputs(self, waves):
        x = self.features(waves, sampling_rate=self.model_rate, return_tensors="pt")
        return {"input_values": x["input_values"].to(self.device, self._dtype)}

    def _run(self, inputs):
        out = self.net(**inputs, output_hidden_states=True)
        return {"hidden": out.hidden_states, "embedding": out.pooler_output}


class CLAPAudio(_AudioEncoder):
    """CLAP audio encoder with its projection (see module docs)."""

    name = "audio/clap"

    def __init__(self, device="cpu", model: str | None = None, layers: Sequence[int] | None = None):
        super().__init__(device)
        from transformers import ClapAudioModelWithProjection

        net, path = load_local_model(
            ClapAudioModelWithProjection,
            model,
            name=self.name,
            model_types=("clap", "clap_audio_model"),
            example="laion/clap-htsat-unfused",
        )
        self._load_features(path)
        self.fusion = bool(getattr(net.config, "enable_fusion", False))
        self._setup(net, layers)

    def _inputs(self, waves):
        # clips are at most the model's 10 s window: no random crop happens without fusion
        x = self.features(
            waves,
            sampling_rate=self.model_rate,
            return_tensors="pt",
            truncation="fusion" if self.fusion else "rand_trunc",
        )
        out = {"input_features": x["input_features"].to(self.device, self._dtype)}
        if "is_longer" in x:
            out["is_longer"] = x["is_longer"].to(self.device)
        return out

    def _run(self, inputs):
        out = self.net(**inputs, output_hidden_states=True)
        return {"hidden": out.hidden_states, "embedding": out.audio_embeds}
