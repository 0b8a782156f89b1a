"""Shot-boundary detection measured on videos with known cuts and dissolves.

Each video is a sequence of shots of real photographs (the scikit-image sample photographs the
photos corpus uses: 16 pictures), each seen by a slowly panning and zooming camera (some shots
pan fast: motion that is not a cut), joined by hard cuts or by dissolves of 0.4-1.0 s; then
written as real uploads are (``generators.encodings``: libx264's defaults, which place a key
frame at most every 250 frames and at scene changes; or a fixed 10 s GOP without scene-change
key frames). A detected boundary matches a true one within ``TOLERANCE_S`` (for a dissolve: of
any frame of it); each true boundary matches at most one detection.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.generators.encodings import Encoding, reencode
from acav_assets.core.media.clips import ClipConfig, detect_shots
from acav_assets.core.media.encode import write_video
from acav_assets.core.media.probe import probe_file

__all__ = ["TOLERANCE_S", "Transition", "evaluate_detector", "write_shot_video"]

TOLERANCE_S = 0.5
ENCODINGS = {
    "x264_defaults": Encoding("x264_defaults"),
    "gop_10s_no_scenecut": Encoding("gop_10s", gop_s=10.0, video_options={"sc_threshold": "0"}),
}


@dataclass(frozen=True)
class Transition:
    start_s: float  # first frame of the transition (a cut: the first frame of the new shot)
    end_s: float  # a cut: = start_s
    kind: str  # "cut" or "dissolve"


def _pictures() -> list[np.ndarray]:
    from PIL import Image

    from acav_assets.core.generators.photos_sounds import BACKGROUNDS, PHOTOS, _photo_dir

    return [np.asarray(Image.open(_photo_dir() / n).convert("RGB")) for n in PHOTOS + BACKGROUNDS]


def _view(img: np.ndarray, cx: float, cy: float, h: float, w: int, hh: int) -> np.ndarray:
    """The window of ``img`` centred at (cx, cy), ``h`` pixels high, resampled to w x hh."""
    ih, iw = img.shape[:2]
    ww = h * w / hh
    ys = np.clip(cy - h / 2 + (np.arange(hh) + 0.5) * h / hh, 0, ih - 1).astype(int)
    xs = np.clip(cx - ww / 2 + (np.arange(w) + 0.5) * ww / w, 0, iw - 1).astype(int)
    return img[ys][:, xs]


def write_shot_video(
    path: str | os.PathLike,
    rng: np.random.Generator,
    pictures: list[np.ndarray],
    *,
    n_shots: int = 5,
    fps: float = 25.0,
    size: tuple[int, int] = (160, 96),
) -> list[Transition]:
    """Write a video of ``n_shots`` shots joined by cuts and dissolves; returns the transitions."""
    w, h = size
    shots = []
    order = rng.permutation(len(pictures))[:n_shots]
    for idx in order:
        img = pictures[idx]
        ih, iw = img.shape[:2]
        n = int(rng.uniform(2.0, 5.0) * fps)
        fast = rng.random() < 0.3  # a fast pan: motion, not a cut
        span = min(ih, iw * h / w)
        h0, h1 = rng.uniform(0.4, 0.9) * span, rng.uniform(0.4, 0.9) * span
        x0, x1 = rng.uniform(0.3, 0.7, 2) * iw
        y0, y1 = rng.uniform(0.3, 0.7, 2) * ih
        if not fast:
            x1, y1 = x0 + (x1 - x0) * 0.2, y0 + (y1 - y0) * 0.2
        a = np.linspace(0, 1, n)
        shots.append(
            np.stack([_view(img, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, h0 + (h1 - h0) * t, w, h) for t in a])
        )
    frames = [shots[0]]
    transitions = []
    pos = shots[0].shape[0]
    for nxt in shots[1:]:
        if rng.random() < 0.5:
            transitions.append(Transition(pos / fps, pos / fps, "cut"))
            frames.append(nxt)
            pos += nxt.shape[0]
        else:
            d = int(rng.uniform(0.4, 1.0) * fps)
            prev = frames[-1]
            d = min(d, prev.shape[0] - 1, nxt.shape[0] - 1)
            alpha = ((np.arange(d) + 1) / (d + 1))[:, None, None, None]
            mix = (prev[-d:] * (1 - alpha) + nxt[:d] * alpha).astype(np.uint8)
            frames[-1] = prev[:-d]
            frames.append(mix)
            frames.append(nxt[d:])
            start = (pos - d) / fps
            transitions.append(Transition(start, start + (d - 1) / fps, "dissolve"))
            pos += nxt.shape[0] - d
    write_video(path, np.concatenate(frames), fps, gop_s=2.0)
    return transitions


def _match(found: np.ndarray, truth: list[Transition]) -> list[bool]:
    """For each true transition, whether a distinct detection lies within the tolerance."""
    used = np.zeros(found.size, bool)
    hit = []
    for tr in truth:
        lo, hi = tr.start_s - TOLERANCE_S, tr.end_s + TOLERANCE_S
        cand = [i for i in np.flatnonzero(~used) if lo <= found[i] <= hi]
        if cand:
            used[min(cand, key=lambda i: abs(found[i] - (tr.start_s + tr.end_s) / 2))] = True
        hit.append(bool(cand))
    return hit


def evaluate_detector(detector: str, videos: list[tuple[Path, list[Transition], float]]) -> dict:
    """Recall per transition kind, precision, F1 and seconds per video of ``detector``."""
    cfg = ClipConfig(max_clips=3, shot_detector=detector)
    hits: dict[str, list[bool]] = {"cut": [], "dissolve": []}
    n_found = n_true_found = 0
    t = time.perf_counter()
    for path, truth, duration in videos:
        shots = detect_shots(path, duration, cfg)
        found = np.array([s.start_s for s in shots[1:]])
        matched = _match(found, truth)
        for tr, m in zip(truth, matched):
            hits[tr.kind].append(m)
        n_found += found.size
        n_true_found += sum(matched)
    seconds = (time.perf_counter() - t) / max(1, len(videos))
    all_hits = hits["cut"] + hits["dissolve"]
    recall = float(np.mean(all_hits)) if all_hits else 0.0
    precision = n_true_found / n_found if n_found else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "detector": detector,
        "recall_cut": float(np.mean(hits["cut"])) if hits["cut"] else None,
        "recall_dissolve": float(np.mean(hits["dissolve"])) if hits["dissolve"] else None,
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "seconds_per_video": seconds,
        "true": len(all_hits),
        "found": n_found,
    }


def write_corpus(
    out: str | os.PathLike, n_videos: int, seed: int, encoding: str
) -> list[tuple[Path, list[Transition], float]]:
    """``n_videos`` shot videos written with ``encoding`` (a key of :data:`ENCODINGS`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pictures = _pictures()
    videos = []
    for i in range(n_videos):
        raw = out / f"raw_{i:03d}.mp4"
        truth = write_shot_video(raw, rng, pictures, n_shots=int(rng.integers(3, 7)))
        dst = out / f"shots_{i:03d}.mp4"
        reencode(raw, dst, ENCODINGS[encoding])
        raw.unlink()
        videos.append((dst, truth, probe_file(dst).duration_s or 0.0))
    return videos
