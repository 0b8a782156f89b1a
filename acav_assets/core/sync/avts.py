"""The model-based synchronisation estimator: a trained AVTS-style model scores a clip's picture
against its own sound shifted by each lag.

The downstream check (:mod:`acav_assets.core.training`) trains a two-stream model whose picture
and sound embeddings meet when they belong together in time: its curriculum takes the same
clip's sound shifted by a second or more as a negative. For a clip window, this estimator embeds
windows of its picture (as the training saw them: ``n_frames`` pictures over ``window_s``) and
the sound at every lag in ``±max_shift_s`` (every ``step_s``), and averages over the windows the
cosine similarity per lag. The lag with the highest similarity is ``offset_s`` (positive: the
sound comes late, as in ``clip_sync``). ``sync_score`` is the model's two-way in-sync
probability, lag 0 against the best lag at least ``min_shift_s`` away, at the temperature the
model was trained with: 0.5 means it cannot tell. A clip without sound or with a still picture
is unknown (None), never out of sync.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from acav_assets.core.media.decode import DecodeConfig, DecodeError, decode_clip
from acav_assets.core.sync.base import SyncEstimate
from acav_assets.core.training.model import AVTSModel
from acav_assets.core.training.train import TrainConfig, load_model

__all__ = ["METHOD", "AVTSSyncEstimator"]

METHOD = "avts"
SILENT_RMS = 1e-3  # a clip whose sound stays below this RMS has no sound to place
STILL_GREY = 1.0  # mean absolute change between consecutive pictures (of 255) below which it is still


class AVTSSyncEstimator:
    """:class:`~acav_assets.core.sync.base.SyncEstimator` with a trained :class:`AVTSModel`."""

    method = METHOD

    def __init__(
        self,
        model: AVTSModel,
        config: TrainConfig,
        *,
        max_shift_s: float = 3.0,
        step_s: float = 0.1,
        min_shift_s: float = 0.4,
        windows: int = 4,
        device: str | torch.device = "cpu",
    ):
        if not 0 < step_s <= min_shift_s < max_shift_s:
            raise ValueError("0 < step_s <= min_shift_s < max_shift_s is required")
        self.model, self.config = model.to(device).eval(), config
        self.max_shift_s, self.min_shift_s, self.windows, self.device = max_shift_s, min_shift_s, windows, device
        self.lags = np.round(np.arange(-max_shift_s, max_shift_s + step_s / 2, step_s), 6)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs) -> AVTSSyncEstimator:
        """The estimator of a model written by :func:`acav_assets.core.training.train.save_model`."""
        model, config = load_model(path, kwargs.get("device", "cpu"))
        return cls(model, config, **kwargs)

    def _unknown(self, reason: str) -> SyncEstimate:
        return SyncEstimate(None, None, 0, METHOD, reason)

    @torch.no_grad()
    def estimate(self, path: str | os.PathLike, start_s: float, end_s: float) -> SyncEstimate:
        cfg = self.config
        step = cfg.window_s / cfg.n_frames
        lo = max(0.0, start_s - self.max_shift_s)
        hi = end_s + self.max_shift_s
        n_frames = max(cfg.n_frames, int(round((hi - lo) / step)))
        try:
            clip = decode_clip(path, lo, lo + n_frames * step, DecodeConfig(n_frames, cfg.size, True, cfg.sample_rate))
        except DecodeError as exc:
            return self._unknown(f"cannot decode: {exc}")
        sr = clip.sample_rate
        times = lo + (np.arange(n_frames) + 0.5) * step  # the picture shown at each target
        inside = np.flatnonzero((times >= start_s) & (times + cfg.window_s <= end_s + 1e-6))
        first = inside[: max(0, inside.size - cfg.n_frames + 1)]
        if not first.size:
            return self._unknown("the clip is shorter than one model window")
        picks = first[np.unique(np.linspace(0, first.size - 1, min(self.windows, first.size)).round().astype(int))]
        clip_audio = clip.audio[int((start_s - lo) * sr) : int((end_s - lo) * sr)]
        if clip_audio.size == 0 or float(np.sqrt(np.mean(clip_audio.astype(np.float64) ** 2))) < SILENT_RMS:
            return self._unknown("no sound")
        grey = clip.frames[inside].astype(np.float32).mean(axis=-1)
        if grey.shape[0] < 2 or float(np.abs(np.diff(grey, axis=0)).mean()) < STILL_GREY:
            return self._unknown("still picture")
        n = int(round(cfg.window_s * sr))
        frames = torch.from_numpy(np.stack([clip.frames[i : i + cfg.n_frames] for i in picks]))
        sounds = []
        for i in picks:
            for lag in self.lags:
                at = int(
                    round((times[i] - 0.5 * step + lag - lo) * sr)
                )  # the window starts half a step before its first target
                window = np.zeros(n, np.float32)
                a, b = max(at, 0), min(at + n, clip.audio.size)
                if b > a:
                    window[a - at : b - at] = clip.audio[a:b]
                sounds.append(window)
        v = self.model.visual(frames.to(self.device))  # (W, D)
        a = self.model.audio(torch.from_numpy(np.stack(sounds)).to(self.device))  # (W * L, D)
        sims = (a.view(len(picks), len(self.lags), -1) * v[:, None, :]).sum(-1).mean(0).cpu().numpy()  # (L,)
        best = int(np.argmax(sims))
        zero = int(np.argmin(np.abs(self.lags)))
        far = np.abs(self.lags) >= self.min_shift_s
        score = 1.0 / (1.0 + np.exp(-(sims[zero] - sims[far].max()) / cfg.temperature))
        return SyncEstimate(float(self.lags[best]), float(score), len(picks), METHOD)
