"""Synthetic cluster assignments with a planted audio-visual correspondence.

Used by the tests, the selection benchmarks and the quality benchmark to measure what the
selector is for: on clips whose sound belongs to their picture, audio clusters and visual
clusters agree; on mismatched clips they do not.

The model, per clip:

- a visual class ``cv`` (``n_classes`` of them) and a *style* per modality (``k // n_classes``
  sub-clusters), shared by every layer of that modality, as layers of one network are;
- matched clips (a ``matched_fraction`` share) have audio class ``ca = cv``; the others get an
  audio class drawn from the *other* classes, so ground truth is unambiguous;
- each clustering maps ``(class, style)`` to one of its ``k`` clusters by a random
  permutation of its own, and replaces the label by a uniformly random cluster with a
  probability that falls with depth (``noise`` from first to last layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PlantedAssignments", "planted_assignments", "precision"]


@dataclass(frozen=True)
class PlantedAssignments:
    labels: np.ndarray  # (n, n_audio + n_visual) uint8/uint16, audio columns first
    modalities: tuple[str, ...]
    matched: np.ndarray  # bool (n,): ground truth, True where audio belongs to the picture

    @property
    def n_matched(self) -> int:
        return int(self.matched.sum())


def planted_assignments(
    n: int,
    *,
    n_audio: int = 5,
    n_visual: int = 5,
    k: int = 32,
    n_classes: int = 8,
    matched_fraction: float = 0.5,
    noise: tuple[float, float] = (0.6, 0.3),
    seed: int = 0,
) -> PlantedAssignments:
    """Generate planted-correspondence assignments; deterministic per ``seed``.

    Memory stays near the output size (one byte per label for ``k ≤ 256``), so 10M+ clips work.
    """
    if n < 1 or n_audio < 1 or n_visual < 1:
        raise ValueError("n, n_audio and n_visual must be positive")
    if not 2 <= n_classes <= k:
        raise ValueError(f"n_classes must be in 2..k, got {n_classes} with k={k}")
    if not 0.0 <= matched_fraction <= 1.0:
        raise ValueError(f"matched_fraction must be in [0, 1], got {matched_fraction}")
    if n > _CHUNK:
        return _planted_chunked(n, n_audio, n_visual, k, n_classes, matched_fraction, noise, seed)
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if k <= 256 else np.uint16
    styles = k // n_classes
    matched = rng.random(n) < matched_fraction
    cv = rng.integers(0, n_classes, n, dtype=np.int64)
    ca = np.where(matched, cv, (cv + rng.integers(1, n_classes, n)) % n_classes)
    m = n_audio + n_visual
    labels = np.empty((n, m), dtype=dtype)
    col = 0
    for cls, n_layers in ((ca, n_audio), (cv, n_visual)):
        style = rng.integers(0, styles, n, dtype=np.int64)
        base = cls * styles + style  # in 0..n_classes*styles-1 < k
        for level in np.linspace(noise[0], noise[1], n_layers):
            perm = rng.permutation(k).astype(dtype)
            lab = perm[base]
            flip = rng.random(n) < level
            lab[flip] = rng.integers(0, k, int(flip.sum()), dtype=dtype)
            labels[:, col] = lab
            col += 1
    modalities = ("audio",) * n_audio + ("visual",) * n_visual
    return PlantedAssignments(labels=labels, modalities=modalities, matched=matched)


_CHUNK = 10_000_000


def _planted_chunked(n, n_audio, n_visual, k, n_classes, matched_fraction, noise, seed) -> PlantedAssignments:
    """The same model for very large n, generated in chunks of 10M clips so that temporaries stay
    small (the output is one byte per label). Its draws differ from the one-shot path's."""
    rng = np.random.default_rng([seed, n])
    dtype = np.uint8 if k <= 256 else np.uint16
    styles = k // n_classes
    m = n_audio + n_visual
    perms = [rng.permutation(k).astype(dtype) for _ in range(m)]
    levels = list(np.linspace(noise[0], noise[1], n_audio)) + list(np.linspace(noise[0], noise[1], n_visual))
    labels = np.empty((n, m), dtype=dtype)
    matched = np.empty(n, dtype=bool)
    for c, s in enumerate(range(0, n, _CHUNK)):
        e = min(n, s + _CHUNK)
        r = np.random.default_rng([seed, n, c])
        size = e - s
        mt = r.random(size) < matched_fraction
        cv = r.integers(0, n_classes, size, dtype=np.int32)
        ca = np.where(mt, cv, (cv + r.integers(1, n_classes, size, dtype=np.int32)) % n_classes)
        matched[s:e] = mt
        for col in range(m):
            cls = ca if col < n_audio else cv
            if col in (0, n_audio):  # one style per clip and modality, shared by its layers
                style = r.integers(0, styles, size, dtype=np.int32)
            lab = perms[col][cls * styles + style]
            flip = r.random(size) < levels[col]
            lab[flip] = r.integers(0, k, int(flip.sum()), dtype=dtype)
            labels[s:e, col] = lab
    return PlantedAssignments(labels, ("audio",) * n_audio + ("visual",) * n_visual, matched)


def precision(selected: np.ndarray, matched: np.ndarray) -> float:
    """Share of the selected clips that truly correspond."""
    selected = np.asarray(selected, dtype=np.int64)
    if selected.size == 0:
        return float("nan")
    return float(matched[selected].mean())
