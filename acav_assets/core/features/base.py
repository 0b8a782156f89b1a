"""The extractor interface: feature spaces, decoded clip batches, and the ``Extractor`` base class.

An extractor has a name, declares its feature spaces (``<modality>/<model>/<layer>`` with a
dimension) and turns a :class:`ClipBatch` into one float32 matrix per feature space. Every
extractor runs in torch on the chosen device: CUDA when available (half precision for the
networks, inference mode), CPU otherwise — the same code path either way. Extractor modules
import only this module; :mod:`acav_assets.core.features.profiles` names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from acav_assets.core.media.decode import DecodedClip

__all__ = [
    "ClipBatch",
    "Extractor",
    "FeatureSpace",
    "load_state_file",
    "prepare_network",
    "profile_feature_spaces",
    "resolve_device",
    "weights_file",
]


@dataclass(frozen=True)
class FeatureSpace:
    name: str  # "<modality>/<model>/<layer>"
    dim: int

    @property
    def modality(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass
class ClipBatch:
    """Decoded clips stacked for an extractor.

    ``frames``: (B, T, H, W, 3) uint8 RGB on the device; ``audio``: list of B mono float32
    tensors at ``sample_rate`` (clips shorter than the clip length have fewer samples).
    """

    clip_ids: list[str]
    frames: torch.Tensor
    audio: list[torch.Tensor]
    sample_rate: int

    @classmethod
    def from_clips(cls, clips: Sequence[DecodedClip], device: torch.device) -> ClipBatch:
        frames = torch.from_numpy(np.stack([c.frames for c in clips])).to(device)
        audio = [torch.from_numpy(c.audio).to(device) for c in clips]
        return cls([c.clip_id for c in clips], frames, audio, clips[0].sample_rate)

    def __len__(self) -> int:
        return len(self.clip_ids)


class Extractor:
    """Base class: subclasses set ``name`` and implement ``feature_spaces`` and ``_extract``."""

    name: str = ""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def feature_spaces(self) -> list[FeatureSpace]:
        raise NotImplementedError

    def _extract(self, batch: ClipBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.inference_mode()
    def extract(self, batch: ClipBatch) -> dict[str, np.ndarray]:
        """One (B, dim) float32 matrix per declared feature space."""
        out = self._extract(batch)
        result = {}
        for fs in self.feature_spaces():
            v = out[fs.name].float().cpu().numpy()
            if v.shape != (len(batch), fs.dim):
                raise RuntimeError(f"{self.name}: {fs.name} gave shape {v.shape}, declared ({len(batch)}, {fs.dim})")
            result[fs.name] = np.ascontiguousarray(v, dtype=np.float32)
        return result


def load_state_file(
    model: torch.nn.Module,
    path: Path,
    *,
    name: str,
    arch: str = "the architecture",
    translate: Callable[[dict], dict] | None = None,
) -> None:
    """Load a torch checkpoint file into ``model`` (strict): a plain state dict, or one wrapped as
    ``{"state_dict": ...}`` / ``{"model_state": ...}``; ``translate`` renames keys of another
    layout. An unreadable file or weights of another shape are a ValueError naming the path."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the same user error whatever torch says
        raise ValueError(f"{name}: {path} is not a torch checkpoint: {str(exc)[:300]}") from None
    for key in ("state_dict", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if translate is not None and isinstance(state, dict):
        state = translate(state)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise ValueError(f"{name}: weights in {path} do not fit {arch}: {str(exc)[:500]}") from None


def weights_file(weights: str | None, *, name: str, default: Callable[[], Path], expected: str) -> Path:
    """``weights`` as an existing file, or ``default()`` when none is configured."""
    if weights is None:
        return default()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{name}: configured weights file {path} does not exist (expected {expected})")
    return path


def prepare_network(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A network ready to embed: eval mode, on ``device``, half precision on CUDA."""
    model.eval().to(device)
    if device.type == "cuda":
        model.half()
    return model


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"auto": CUDA when available, else CPU. An explicit "cuda" without a GPU is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU")
    return dev


def profile_feature_spaces(extractors: Iterable[Extractor]) -> list[FeatureSpace]:
    spaces = [fs for e in extractors for fs in e.feature_spaces()]
    names = [fs.name for fs in spaces]
    if len(set(names)) != len(names):
        raise ValueError(f"feature spaces declared twice: {sorted({n for n in names if names.count(n) > 1})}")
    return spaces
