"""Pretrained backbones, several layers each, globally average pooled (as the reference does).

- ``visual/r2plus1d_18``: torchvision's R(2+1)D-18 video network (Kinetics-400 when weights
  are given); the stem and the four residual stages are tapped: 5 feature spaces.
- ``audio/vggish``: a VGGish-architecture CNN over 0.96 s log-mel patches (96 × 64); the four
  pooling stages and the 128-d embedding are tapped: 5 feature spaces. A clip's vector is the
  mean over its patches. Weights in the layout of the common PyTorch port (``torchvggish``'s
  ``vggish-10086976.pth``: ``features.*`` / ``embeddings.*``) are accepted as they are.
- ``visual/slowfast_r50``: the reference's video network, SlowFast-R50 (8 × 8) from
  ``pytorchvideo``; the four residual stages (slow and fast pathways pooled and concatenated)
  and the 400 Kinetics logits are tapped: 5 feature spaces. Weights: the ``.pyth`` checkpoint
  of pytorchvideo's model zoo (a ``{"model_state": ...}`` dict) or a plain state dict.

Weights never download. ``weights`` is a path to a state dict (``torch.save(model.state_dict())``
of the same architecture; a ``{"state_dict": ...}`` or ``{"model_state": ...}`` wrapper is accepted), or ``"cache"`` to use
torchvision's own checkpoint when it is already in the torch hub cache (R(2+1)D only). With no
weights the network is built with seeded random weights and a warning says so: the features are
then deterministic but not semantic (good for tests and plumbing, not for curation). A
configured path that does not exist is an error naming the path.

On CUDA the networks run in half precision under inference mode.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from acav_assets.core.features.base import (
    ClipBatch,
    Extractor,
    FeatureSpace,
    load_state_file,
    prepare_network,
    weights_file,
)

__all__ = ["R2Plus1D", "SlowFast", "VGGish", "VGGishNet", "load_weights"]

log = logging.getLogger(__name__)

_KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
_KINETICS_STD = (0.22803, 0.22145, 0.216989)


class RandomWeightsWarning(UserWarning):
    """A backbone runs with random weights because none were configured."""


def load_weights(
    model: nn.Module,
    weights: str | os.PathLike | None,
    *,
    name: str,
    seed: int,
    cache_file: str | None = None,
    translate=None,
) -> str:
    """Initialise ``model`` from ``weights`` (see module docs); returns where weights came from."""
    if weights is None:
        # each module's own default initialisation, under a fixed seed (the global RNG is untouched)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for m in model.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        warnings.warn(
            f"{name}: no weights configured, using seeded random weights (seed {seed}); "
            f"features are deterministic but not semantic",
            RandomWeightsWarning,
            stacklevel=3,
        )
        return f"random(seed={seed})"
    if weights == "cache":
        if cache_file is None:
            raise ValueError(f"{name}: weights='cache' is not supported for this backbone; give a file path")
        path = Path(torch.hub.get_dir()) / "checkpoints" / cache_file
        if not path.is_file():
            raise FileNotFoundError(
                f"{name}: weights='cache' but {path} is not in the torch cache "
                f"(nothing is downloaded; place the file there or give a path)"
            )
    else:
        path = weights_file(weights, name=name, default=Path, expected="a torch state dict of this architecture")
    load_state_file(model, path, name=name, translate=translate)
    return str(path)


class R2Plus1D(Extractor):
    """R(2+1)D-18 with stem and layer1..4 tapped and pooled (64, 64, 128, 256, 512 dims)."""

    name = "visual/r2plus1d_18"

    LAYERS = (("stem", 64), ("layer1", 64), ("layer2", 128), ("layer3", 256), ("layer4", 512))

    def __init__(self, device="cpu", weights: str | None = None, n_frames: int = 16, size: int = 112, seed: int = 0):
        super().__init__(device)
        from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

        self.n_frames, self.size = n_frames, size
        self.net = r2plus1d_18(weights=None)
        cache_file = os.path.basename(R2Plus1D_18_Weights.KINETICS400_V1.url)
        self.weights_source = load_weights(self.net, weights, name=self.name, seed=seed, cache_file=cache_file)
        self.net = prepare_network(self.net, self.device)
        self.mean = torch.tensor(_KINETICS_MEAN, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(_KINETICS_STD, device=self.device).view(1, 3, 1, 1, 1)

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{layer}", dim) for layer, dim in self.LAYERS]

    def _extract(self, batch: ClipBatch):
        x = batch.frames  # B T H W 3 uint8
        t = x.shape[1]
        idx = torch.linspace(0, t - 1, self.n_frames, device=x.device).round().long()
        x = x[:, idx].permute(0, 4, 1, 2, 3).float().div_(255.0)  # B 3 T H W
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            b, c, tt, h, w = x.shape
            x = F.interpolate(
                x.reshape(b, c * tt, h, w),
                size=(self.size, self.size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).reshape(b, c, tt, self.size, self.size)
        x = (x - self.mean) / self.std
        x = x.to(next(self.net.parameters()).dtype)
        out = {}
        for layer, _ in self.LAYERS:
            x = getattr(self.net, layer)(x)
            out[f"{self.name}/{layer}"] = x.float().mean((2, 3, 4))
        return out


class VGGishNet(nn.Module):
    """The VGGish architecture (VGG-like CNN on 96 × 64 log-mel patches → 128-d)."""

    def __init__(self):
        super().__init__()

        def block(cin, couts):
            layers = []
            for cout in couts:
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
            return nn.Sequential(*layers, nn.MaxPool2d(2, 2))

        self.block1 = block(1, [64])
        self.block2 = block(64, [128])
        self.block3 = block(128, [256, 256])
        self.block4 = block(256, [512, 512])
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 128),
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        taps = {}
        for name in ("block1", "block2", "block3", "block4"):
            x = getattr(self, name)(x)
            taps[name] = x
        # flattened channels-last, as VGGish (and its PyTorch port) does, so its weights fit
        taps["embedding"] = self.embeddings(x.permute(0, 2, 3, 1).flatten(1))
        return taps


# torchvggish's layout: one `features` Sequential (conv, relu, pool, ...) and `embeddings`
_TORCHVGGISH = {
    "features.0": "block1.0",
    "features.3": "block2.0",
    "features.6": "block3.0",
    "features.8": "block3.2",
    "features.11": "block4.0",
    "features.13": "block4.2",
    "embeddings.0": "embeddings.0",
    "embeddings.2": "embeddings.2",
    "embeddings.4": "embeddings.4",
}


def from_torchvggish(state: dict) -> dict:
    """Rename a ``torchvggish`` state dict to :class:`VGGishNet`'s names (others pass unchanged;
    its PCA post-processing parameters are dropped)."""
    if not any(k.startswith("features.") for k in state):
        return state
    out = {}
    for k, v in state.items():
        prefix, _, leaf = k.rpartition(".")
        if prefix in _TORCHVGGISH:
            out[f"{_TORCHVGGISH[prefix]}.{leaf}"] = v
        elif not k.startswith("pproc"):
            out[k] = v
    return out


class VGGish(Extractor):
    """VGGish-style CNN: pooled outputs of its 4 conv blocks and its 128-d embedding."""

    name = "audio/vggish"

    LAYERS = (("block1", 64), ("block2", 128), ("block3", 256), ("block4", 512), ("embedding", 128))

    def __init__(self, device="cpu", weights: str | None = None, seed: int = 0, sample_rate: int = 16_000):
        super().__init__(device)
        self.sample_rate = sample_rate
        self.net = VGGishNet()
        self.weights_source = load_weights(self.net, weights, name=self.name, seed=seed, translate=from_torchvggish)
        self.net = prepare_network(self.net, self.device)
        # VGGish front end: 25 ms windows, 10 ms hop, 64 mel bands 125-7500 Hz, log(mel + 0.01)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=512,
            win_length=400,
            hop_length=160,
            n_mels=64,
            f_min=125.0,
            f_max=7500.0,
            power=1.0,
        ).to(self.device)

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{layer}", dim) for layer, dim in self.LAYERS]

    def _patches(self, wave: torch.Tensor) -> torch.Tensor:
        logmel = torch.log(self.mel(wave.float()) + 0.01).T  # frames x 64
        n = max(1, logmel.shape[0] // 96)
        if logmel.shape[0] < 96:
            logmel = F.pad(logmel, (0, 0, 0, 96 - logmel.shape[0]), value=float(torch.log(torch.tensor(0.01))))
        return logmel[: n * 96].reshape(n, 1, 96, 64)

    def _extract(self, batch: ClipBatch):
        if batch.sample_rate != self.sample_rate:
            raise ValueError(f"{self.name} expects {self.sample_rate} Hz audio, got {batch.sample_rate} Hz")
        patches = [self._patches(a) for a in batch.audio]
        counts = [p.shape[0] for p in patches]
        x = torch.cat(patches).to(next(self.net.parameters()).dtype)
        taps = self.net(x)
        owner = torch.repeat_interleave(
            torch.arange(len(counts), device=x.device), torch.tensor(counts, device=x.device)
        )
        out = {}
        for layer, dim in self.LAYERS:
            v = taps[layer].float()
            if v.dim() == 4:
                v = v.mean((2, 3))
            summed = torch.zeros(len(counts), dim, device=x.device).index_add_(0, owner, v)
            out[f"{self.name}/{layer}"] = summed / torch.tensor(counts, device=x.device, dtype=torch.float32)[:, None]
        return out


class SlowFast(Extractor):
    """SlowFast-R50 (pytorchvideo): res2..res5 (slow ‖ fast, pooled) and the Kinetics logits."""

    name = "visual/slowfast_r50"

    def __init__(
        self,
        device="cpu",
        weights: str | None = None,
        size: int = 224,
        alpha: int = 4,
        n_frames: int = 32,
        depth: int = 50,
        seed: int = 0,
    ):
        super().__init__(device)
        try:
            from pytorchvideo.models.slowfast import create_slowfast
        except ModuleNotFoundError:
            raise ModuleNotFoundError(f"{self.name} needs pytorchvideo (pip install pytorchvideo==0.1.5)") from None
        self.size, self.alpha, self.n_frames = size, alpha, n_frames
        self.net = create_slowfast(model_depth=depth, slowfast_conv_channel_fusion_ratio=2)
        self.weights_source = load_weights(self.net, weights, name=self.name, seed=seed)
        self.net = prepare_network(self.net, self.device)
        self.mean = torch.tensor((0.45, 0.45, 0.45), device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor((0.225, 0.225, 0.225), device=self.device).view(1, 3, 1, 1, 1)
        # each tap's width (the fusions add fast channels to the slow pathway): one small probe
        probe = torch.zeros(1, 3, self.n_frames, 64, 64, device=self.device, dtype=next(self.net.parameters()).dtype)
        with torch.inference_mode():
            self.dims = {k.rsplit("/", 1)[1]: v.shape[1] for k, v in self._forward(probe).items()}

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{tap}", dim) for tap, dim in self.dims.items()]

    def _extract(self, batch: ClipBatch):
        x = batch.frames  # B T H W 3 uint8
        idx = torch.linspace(0, x.shape[1] - 1, self.n_frames, device=x.device).round().long()
        x = x[:, idx].permute(0, 4, 1, 2, 3).float().div_(255.0)  # B 3 T H W
        b, c, t, h, w = x.shape
        if (h, w) != (self.size, self.size):
            x = F.interpolate(
                x.reshape(b, c * t, h, w),
                size=(self.size, self.size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            ).reshape(b, c, t, self.size, self.size)
        return self._forward(((x - self.mean) / self.std).to(next(self.net.parameters()).dtype))

    def _forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        t = x.shape[2]
        slow_idx = torch.linspace(0, t - 1, max(1, t // self.alpha), device=x.device).round().long()
        y = [x[:, :, slow_idx], x]
        out = {}
        for i, block in enumerate(self.net.blocks[:5]):  # stem, res2..res5
            y = block(y)
            if i >= 1:
                out[f"{self.name}/res{i + 1}"] = torch.cat([p.float().mean((2, 3, 4)) for p in y], 1)
        # the head: its own pooling (sized for 224 px, 8 + 32 frames), so pool globally instead
        pooled = torch.cat([p.float().mean((2, 3, 4)) for p in y], 1)
        head = self.net.blocks[-1]
        out[f"{self.name}/logits"] = head.proj(pooled.to(head.proj.weight.dtype)).float()
        return out
