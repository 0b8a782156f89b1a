"""Evaluation of a trained model on a held-out labelled split: linear probes and retrieval.

The held-out clips are video files listed in a CSV ``name,visual_label,audio_label`` (names
relative to a root folder). Each is decoded once into ``windows`` windows spread over it; a
model embeds every window and a clip's embedding is the mean of its windows'.

- **Linear probes**: logistic regression (multinomial, L2, fitted by L-BFGS in torch) on the
  frozen visual embeddings to ``visual_label`` and on the audio embeddings to ``audio_label``;
  accuracy by stratified k-fold cross-validation over the held-out set.
- **Retrieval R@1**: over the held-out clips whose sound matches their picture (same label, or
  a ``matched`` column), the share whose own picture is the nearest picture to their sound;
  and, less strict, the share whose nearest picture has their sound's class.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from acav_assets.core.settings import setting
from acav_assets.core.training.data import decode_media, media_window
from acav_assets.core.training.model import AVTSModel
from acav_assets.core.training.train import TrainConfig, resolve_device

__all__ = [
    "ProbeConfig",
    "ProbeSet",
    "class_retrieval_r1",
    "embed_probe_set",
    "evaluate_model",
    "linear_probe_accuracy",
    "load_probe_set",
    "read_probe_labels",
    "retrieval_r1",
]


@dataclass(frozen=True)
class ProbeConfig:
    windows: int = 4  # windows per held-out clip, spread evenly over it
    shots: int = setting(
        2, "fit each linear probe on this many held-out clips per class, test on the rest (0 = k-fold)"
    )
    repeats: int = 20  # draws of the few-shot training clips
    folds: int = 5  # cross-validation folds of the probes when shots = 0
    l2: float = 1e-2  # the probes' L2 penalty (on standardised embeddings)
    features: str = "embedding"  # "embedding": the shared space; "pooled": the encoders' pooled features


@dataclass
class ProbeSet:
    """The held-out split, decoded: per clip ``windows`` windows of frames and sound."""

    names: list[str]
    visual_labels: np.ndarray  # (M,) int codes into ``classes``
    audio_labels: np.ndarray  # (M,) int codes into ``classes``
    matched: np.ndarray  # (M,) bool: the sound belongs to the picture
    classes: list[str]
    frames: np.ndarray  # (M, windows, T, size, size, 3) uint8
    audio: np.ndarray  # (M, windows, samples) float32


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "y", "t")


def read_probe_labels(csv_path: str | os.PathLike) -> list[dict]:
    """Rows of a probe CSV: ``name``, ``visual_label``, ``audio_label`` and ``matched`` (from a
    ``matched`` column when there is one, else visual_label == audio_label)."""
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"name", "visual_label", "audio_label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: the probe CSV needs the columns {sorted(missing)}")
        rows = []
        for r in reader:
            matched = _truthy(r["matched"]) if r.get("matched") not in (None, "") else None
            rows.append(
                {
                    "name": r["name"],
                    "visual_label": r["visual_label"].strip(),
                    "audio_label": r["audio_label"].strip(),
                    "matched": matched
                    if matched is not None
                    else r["visual_label"].strip() == r["audio_label"].strip(),
                }
            )
    if not rows:
        raise ValueError(f"{csv_path}: no clips listed")
    return rows


def load_probe_set(
    csv_path: str | os.PathLike,
    root: str | os.PathLike,
    config: TrainConfig = TrainConfig(),
    probe: ProbeConfig = ProbeConfig(),
    progress: Callable[[str], None] | None = None,
) -> ProbeSet:
    """Decode the held-out clips of ``csv_path`` (files under ``root``) into windows shaped as
    the training's (``config``): done once, then every trained model is evaluated on it."""
    rows = read_probe_labels(csv_path)
    classes = sorted({r["visual_label"] for r in rows} | {r["audio_label"] for r in rows})
    code = {c: i for i, c in enumerate(classes)}
    frames, audio = [], []
    if probe.shots > 0:  # refused before any training, not after it
        for kind in ("visual_label", "audio_label"):
            counts: dict[str, int] = {}
            for r in rows:
                counts[r[kind]] = counts.get(r[kind], 0) + 1
            few = sorted(c for c, n in counts.items() if n <= probe.shots)
            if few:
                raise ValueError(
                    f"{csv_path}: a {probe.shots}-shot probe needs more than {probe.shots} clips of every "
                    f"{kind.replace('_', ' ')}; too few of {', '.join(few[:5])}"
                )
    for i, r in enumerate(rows):
        path = Path(root) / r["name"]
        try:
            media = decode_media(path, sample_rate=config.sample_rate)
        except (OSError, ValueError, av.error.FFmpegError) as exc:  # a missing or undecodable file
            raise ValueError(f"held-out clip {r['name']} (under {root}) cannot be decoded: {exc}") from None
        span = max(0.0, media.duration_s - config.window_s)
        starts = np.linspace(0.0, span, probe.windows) if probe.windows > 1 else [span / 2]
        wins = [media_window(media, float(t), config.window_s, config.n_frames, config.size) for t in starts]
        frames.append(np.stack([f for f, _ in wins]))
        audio.append(np.stack([a for _, a in wins]))
        if progress and (i + 1) % 50 == 0:
            progress(f"decoded {i + 1}/{len(rows)} held-out clips")
    return ProbeSet(
        [r["name"] for r in rows],
        np.array([code[r["visual_label"]] for r in rows]),
        np.array([code[r["audio_label"]] for r in rows]),
        np.array([r["matched"] for r in rows], bool),
        classes,
        np.stack(frames),
        np.stack(audio),
    )


@torch.no_grad()
def embed_probe_set(
    model: AVTSModel,
    probe_set: ProbeSet,
    *,
    features: str = "embedding",
    device: str | torch.device = "auto",
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(visual, audio) embeddings of every held-out clip: the mean over its windows, unit-normalised.
    ``features``: ``embedding`` (the shared space) or ``pooled`` (before the projection)."""
    if features not in ("embedding", "pooled"):
        raise ValueError(f"features must be 'embedding' or 'pooled', got {features!r}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    m, w = probe_set.frames.shape[:2]
    frames = torch.from_numpy(probe_set.frames.reshape(m * w, *probe_set.frames.shape[2:]))
    audio = torch.from_numpy(probe_set.audio.reshape(m * w, -1))
    vis, aud = [], []
    for lo in range(0, m * w, batch_size):
        f, a = frames[lo : lo + batch_size].to(dev), audio[lo : lo + batch_size].to(dev)
        if features == "pooled":
            vis.append(model.visual.pooled(f).float().cpu())
            aud.append(model.audio.pooled(a).float().cpu())
        else:
            vis.append(model.visual(f).float().cpu())
            aud.append(model.audio(a).float().cpu())

    def per_clip(parts: list[torch.Tensor]) -> np.ndarray:
        x = torch.nn.functional.normalize(torch.cat(parts), dim=-1).view(m, w, -1).mean(1)
        return torch.nn.functional.normalize(x, dim=-1).numpy()

    return per_clip(vis), per_clip(aud)


def _stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per sample, each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)
    return fold


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, iters: int = 100) -> torch.Tensor:
    """Weights (D + 1, C) of multinomial logistic regression with an L2 penalty, by L-BFGS."""
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    w = torch.zeros(xb.shape[1], n_classes, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xb @ w, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _probe_split_accuracy(xt: torch.Tensor, yt: torch.Tensor, train: np.ndarray, n_classes: int, l2: float) -> int:
    """Correct predictions on ``~train`` of a probe fitted on ``train`` (features standardised
    with the training part's statistics)."""
    tr, te = torch.from_numpy(train), torch.from_numpy(~train)
    mu, sd = xt[tr].mean(0), xt[tr].std(0) + 1e-6
    with torch.enable_grad():
        w = _fit_logistic((xt[tr] - mu) / sd, yt[tr], n_classes, l2)
    xb = torch.cat([(xt[te] - mu) / sd, torch.ones(int(te.sum()), 1, dtype=xt.dtype)], 1)
    return int(((xb @ w).argmax(1) == yt[te]).sum())


def linear_probe_accuracy(
    x: np.ndarray, y: np.ndarray, *, folds: int = 5, l2: float = 1e-3, seed: int = 0, shots: int = 0, repeats: int = 10
) -> float:
    """Accuracy of a linear probe ``x -> y`` (multinomial logistic regression with an L2 penalty
    on standardised features). ``shots = 0``: stratified ``folds``-fold cross-validation over all
    of ``x``. ``shots > 0``: fitted on ``shots`` samples per class drawn at random, tested on the
    others, averaged over ``repeats`` draws: with few labels the probe shows how well the
    representation groups the classes, where a probe on many labels separates them from almost
    any features (even an untrained network's)."""
    y = np.asarray(y)
    classes, yi = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        return 1.0
    xt = torch.from_numpy(np.asarray(x, np.float64))
    yt = torch.from_numpy(yi.astype(np.int64))
    if shots > 0:
        counts = np.bincount(yi)
        if counts.min() <= shots:
            raise ValueError(f"a few-shot probe with {shots} shots needs more than {shots} clips of every class")
        rng = np.random.default_rng(seed)
        scores = []
        for _ in range(repeats):
            train = np.zeros(len(y), bool)
            for c in range(len(classes)):
                train[rng.choice(np.flatnonzero(yi == c), shots, replace=False)] = True
            scores.append(_probe_split_accuracy(xt, yt, train, len(classes), l2) / int((~train).sum()))
        return float(np.mean(scores))
    folds = max(2, min(folds, int(np.bincount(yi).min())))
    fold = _stratified_folds(yi, folds, seed)
    correct = sum(_probe_split_accuracy(xt, yt, fold != k, len(classes), l2) for k in range(folds))
    return correct / len(y)


def retrieval_r1(audio: np.ndarray, visual: np.ndarray) -> float:
    """Share of clips whose own picture is the nearest (cosine) picture to their sound, among
    the pictures of the clips given (row i of both is clip i)."""
    sims = np.asarray(audio) @ np.asarray(visual).T
    return float((sims.argmax(1) == np.arange(len(sims))).mean())


def class_retrieval_r1(audio: np.ndarray, visual: np.ndarray, audio_labels, visual_labels) -> float:
    """Share of clips whose nearest picture to their sound shows their sound's class."""
    sims = np.asarray(audio) @ np.asarray(visual).T
    return float((np.asarray(visual_labels)[sims.argmax(1)] == np.asarray(audio_labels)).mean())


def evaluate_model(
    model: AVTSModel,
    probe_set: ProbeSet,
    probe: ProbeConfig = ProbeConfig(),
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> dict[str, float]:
    """``audio_probe``, ``visual_probe`` (cross-validated accuracy), ``retrieval_r1`` and
    ``retrieval_class_r1`` (over the matching held-out clips) of a trained model."""
    v, a = embed_probe_set(model, probe_set, features=probe.features, device=device)
    fit = {"folds": probe.folds, "l2": probe.l2, "seed": seed, "shots": probe.shots, "repeats": probe.repeats}
    out = {
        "audio_probe": linear_probe_accuracy(a, probe_set.audio_labels, **fit),
        "visual_probe": linear_probe_accuracy(v, probe_set.visual_labels, **fit),
    }
    if probe.features != "embedding":  # retrieval needs the shared space
        v, a = embed_probe_set(model, probe_set, device=device)
    m = probe_set.matched
    if m.sum() >= 2:
        out["retrieval_r1"] = retrieval_r1(a[m], v[m])
        out["retrieval_class_r1"] = class_retrieval_r1(
            a[m], v[m], probe_set.audio_labels[m], probe_set.visual_labels[m]
        )
    else:
        out["retrieval_r1"] = out["retrieval_class_r1"] = float("nan")
    return out
