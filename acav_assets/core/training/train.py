"""Self-supervised training of the two-stream model from exported shards.

The loss is InfoNCE over a batch in both directions: for each clip's picture, its own sound is
the positive and the other clips' sounds the negatives, and for each sound the same with
pictures. Windows of the same clip that meet in one batch are not counted as each other's
negatives. After ``hard_from`` of the steps the curriculum adds, for each picture, one hard
negative: the same clip's sound taken from a window at least ``min_shift_s`` away, which easy
negatives from other clips never teach the model to tell apart (AVTS's curriculum).

Repeatable per seed on the CPU: ``torch.manual_seed`` fixes the weights, a generator seeded
from it the data order. On CUDA the forward pass runs under ``torch.autocast`` (bfloat16 where
supported, else float16 with a gradient scaler); the CPU runs in float32.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from acav_assets.core.settings import setting
from acav_assets.core.training.data import ShardWindows
from acav_assets.core.training.model import VISUAL_BACKBONES, AVTSModel

__all__ = [
    "TrainConfig",
    "build_model",
    "TrainResult",
    "contrastive_loss",
    "load_model",
    "resolve_device",
    "save_model",
    "train_av_model",
]


@dataclass(frozen=True)
class TrainConfig:
    """Model, data and optimisation settings of one training run (the same for every training
    set a comparison trains)."""

    steps: int = setting(200, "optimiser steps of each training run (the same for every training set)")
    batch_size: int = setting(32, "windows per optimiser step")
    n_frames: int = setting(8, "pictures per training window")
    size: int = setting(32, "pictures are size x size pixels")
    window_s: float = setting(2.0, "seconds of picture and sound per training window")
    visual_backbone: str = setting(
        "scratch",
        "the picture stream: scratch (a small 3-D conv net trained from pixels) or efficientnet_lite0 (each "
        "frame through the frozen ImageNet EfficientNet-Lite0 the installed package ships, then a trained "
        "temporal conv and projection; needs size >= 64)",
        choices=VISUAL_BACKBONES,
    )
    sample_rate: int = 16_000
    n_mels: int = 64
    dim: int = 64  # the shared embedding space
    width: int = 16  # channels of the first conv layer (then 2x, 4x, 4x)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    hard_from: float = setting(
        0.5, "share of the steps after which the same clip's shifted sound joins as a hard negative (1 = never)"
    )
    min_shift_s: float = 1.0  # a hard negative's window starts at least this far from the positive's
    windows_per_clip: int = 4  # windows each decoded clip gives per epoch (decoding is the costly part)
    shuffle_buffer: int = 256
    workers: int = setting(2, "DataLoader worker processes that read and decode the shards (0 = in this process)")
    use_arrays: bool = False  # read .frames.npy / .audio.npy (export --with-arrays) instead of decoding .mp4

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError("steps >= 1 and batch_size >= 2 are required")
        if not 0 <= self.hard_from <= 1:
            raise ValueError(f"hard_from must be in [0, 1], got {self.hard_from}")
        if self.min_shift_s < 1.0:
            raise ValueError(f"min_shift_s must be >= 1 s (a shifted sound is a hard negative), got {self.min_shift_s}")
        if self.size < 16 or self.n_frames < 4:
            raise ValueError("size >= 16 and n_frames >= 4 are required")
        if self.visual_backbone not in VISUAL_BACKBONES:
            raise ValueError(f"visual_backbone must be one of {VISUAL_BACKBONES}, got {self.visual_backbone!r}")
        if self.visual_backbone != "scratch" and self.size < 64:
            raise ValueError(
                f"visual_backbone {self.visual_backbone} needs pictures of at least 64x64 (size >= 64, "
                f"got {self.size}): the network reduces them 32 times"
            )


@dataclass
class TrainResult:
    model: AVTSModel
    config: TrainConfig
    seed: int
    device: str
    seconds: float
    clips_seen: int  # windows trained on (steps x batch size)
    losses: list[float] = field(default_factory=list)  # per step
    hard_steps: int = 0  # steps that had hard negatives

    @property
    def clips_per_second(self) -> float:
        return self.clips_seen / self.seconds if self.seconds > 0 else 0.0


def build_model(config: TrainConfig) -> AVTSModel:
    """A fresh :class:`AVTSModel` shaped as ``config`` says (its weights from the global seed)."""
    return AVTSModel(config.dim, config.width, config.sample_rate, config.n_mels, config.visual_backbone)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def contrastive_loss(
    visual: torch.Tensor,
    audio: torch.Tensor,
    clip_ids: Sequence[str],
    temperature: float,
    shifted: torch.Tensor | None = None,
    has_shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE between unit vectors ``visual`` (B, D) and ``audio`` (B, D), row i of
    each from the same window. Other windows of the same clip are left out of the negatives.
    ``shifted`` (B, D): the same clips' sound from another time, one more negative for each
    picture where ``has_shift``."""
    n = visual.shape[0]
    logits = visual.float() @ audio.float().T / temperature
    ids = list(clip_ids)
    same = torch.tensor([[a == b for b in ids] for a in ids], device=logits.device)
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(n, device=logits.device)
    v2a = logits
    if shifted is not None:
        hard = (visual.float() * shifted.float()).sum(-1, keepdim=True) / temperature
        if has_shift is not None:
            hard = hard.masked_fill(~has_shift.bool().view(-1, 1), float("-inf"))
        v2a = torch.cat([logits, hard], dim=1)
    ce = torch.nn.functional.cross_entropy
    return 0.5 * (ce(v2a, target) + ce(logits.T, target))


def _worker_init(_):
    torch.set_num_threads(1)  # decoding workers: one thread each, the training keeps the rest


def _stop_workers(batches, progress: Callable[[str], None] | None) -> None:
    """Stop the loader's worker processes now, not at garbage collection: a decoding worker that
    dies while it is being stopped (seen once, on a machine short of memory) is then one line,
    not a traceback printed from a finaliser. The training was complete by then."""
    stop = getattr(batches, "_shutdown_workers", None)  # the iterator of a multi-process loader
    if stop is None:
        return
    try:
        stop()
    except RuntimeError as exc:
        if progress:
            progress(f"a data loader worker ended badly while stopping ({exc}); the training was complete")


def train_av_model(
    shards: Sequence[str | os.PathLike],
    config: TrainConfig = TrainConfig(),
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a fresh :class:`AVTSModel` for ``config.steps`` steps on windows of the clips in
    ``shards`` (WebDataset tars from ``acav export``). Returns the model in eval mode and what
    the run cost. Deterministic per ``seed`` on the CPU with a given ``config.workers``."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)  # the data order: its own stream, not the weights'
    data_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=order))
    model = build_model(config).to(dev)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1, anneal_strategy="cos"
    )
    use_amp = dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    dataset = ShardWindows(
        shards,
        seed=data_seed,
        window_s=config.window_s,
        n_frames=config.n_frames,
        size=config.size,
        sample_rate=config.sample_rate,
        min_shift_s=config.min_shift_s,
        windows_per_clip=config.windows_per_clip,
        shuffle_buffer=config.shuffle_buffer,
        use_arrays=config.use_arrays,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        num_workers=config.workers,
        worker_init_fn=_worker_init if config.workers else None,
        # spawned, not forked: a fork of a process whose torch, FFmpeg or polars threads hold a
        # lock can hang in the child (as the export's encoders are, for the same reason)
        multiprocessing_context="spawn" if config.workers else None,
        persistent_workers=False,
        pin_memory=dev.type == "cuda",
        prefetch_factor=2 if config.workers else None,
    )
    hard_start = int(round(config.hard_from * config.steps))
    result = TrainResult(model, config, seed, str(dev), 0.0, 0)
    model.train()
    t0 = time.perf_counter()
    batches = iter(loader)
    try:
        for step in range(config.steps):
            batch = next(batches)
            frames = batch["frames"].to(dev, non_blocking=True)
            audio = batch["audio"].to(dev, non_blocking=True)
            hard = step >= hard_start
            with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=use_amp):
                if hard:
                    # one pass of the sound encoder over positives and shifted sounds together
                    both = torch.cat([audio, batch["audio_shift"].to(dev, non_blocking=True)])
                    z_a, z_s = model.audio(both).chunk(2)
                else:
                    z_a, z_s = model.audio(audio), None
                z_v = model.visual(frames)
                loss = contrastive_loss(
                    z_v,
                    z_a,
                    batch["clip_id"],
                    config.temperature,
                    shifted=z_s,
                    has_shift=batch["has_shift"].to(dev) if hard else None,
                )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            result.losses.append(float(loss.detach()))
            result.hard_steps += int(hard)
            result.clips_seen += frames.shape[0]
            if progress and ((step + 1) % max(1, config.steps // 10) == 0 or step + 1 == config.steps):
                took = time.perf_counter() - t0
                progress(
                    f"step {step + 1}/{config.steps}: loss {sum(result.losses[-10:]) / len(result.losses[-10:]):.3f}"
                    f"{' (with shifted negatives)' if hard else ''}, {result.clips_seen / took:.0f} clips/s"
                )
    finally:
        _stop_workers(batches, progress)
        del batches
    result.seconds = time.perf_counter() - t0
    model.eval()
    return result


def save_model(model: AVTSModel, config: TrainConfig, path: str | os.PathLike) -> None:
    """Write a trained model and the settings it was trained with (what :func:`load_model` and
    :class:`acav_assets.core.sync.avts.AVTSSyncEstimator` read), atomically."""
    tmp = f"{os.fspath(path)}.tmp"
    torch.save({"state_dict": model.state_dict(), "config": dataclasses.asdict(config)}, tmp)
    os.replace(tmp, path)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[AVTSModel, TrainConfig]:
    """A model written by :func:`save_model`, in eval mode, and its training settings. Only
    tensors and plain values are unpickled (``weights_only``); a file of another kind is refused."""
    try:
        saved = torch.load(os.fspath(path), map_location=device, weights_only=True)
        config = TrainConfig(**saved["config"])
        model = build_model(config)
        model.load_state_dict(saved["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path}: not a model written by acav's downstream training ({exc})") from None
    return model.to(device).eval(), config
