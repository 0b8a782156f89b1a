"""Clip windows: which seconds of each video become clips.

Follows the reference: a clip is ``clip_s`` long (10 s); a video shorter than that but at least
``min_clip_s`` (2.5 s) gives one clip of its whole length; by default one window, centred.
Optionally up to ``max_clips`` windows, centred on distinct shots, preferring shots that look
different from those already chosen. Shots come from ``shot_detector``: ``"keyframes"``, colour
histograms of key frames only (cheap to decode: no inter-frame prediction; it sees only cuts
where the encoder put a key frame), or ``"transnetv2"``, the TransNetV2 network over every frame
(``media/shots.py``; cuts anywhere, and dissolves). ``benchmarks/shots.py`` compares them.

Times are seconds from the first video frame. Clip ids are stable: they derive from the video's
content id and the window in milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from acav_assets.core.settings import setting

__all__ = ["ClipConfig", "ClipWindow", "SHOT_DETECTORS", "clip_id", "clip_windows", "detect_shots", "Shot"]

SHOT_DETECTORS = ("keyframes", "transnetv2")


@dataclass(frozen=True)
class ClipConfig:
    clip_s: float = setting(10.0, "clip length in seconds")
    min_clip_s: float = setting(2.5, "shortest video that still gives one (shorter) clip")
    max_clips: int = setting(1, "clips per video; > 1 places them on distinct shots (reference: 3)")
    shot_detector: str = setting(
        "transnetv2",
        "with max_clips > 1, how shots are found (transnetv2: the TransNetV2 network over every frame; "
        "keyframes: colour histograms of key frames; benchmarks/shots.py)",
        choices=SHOT_DETECTORS,
    )
    shot_threshold: float = 0.35  # keyframes: colour-histogram distance between key frames that marks a cut
    max_keyframes: int = 2000  # keyframes: bound on the work of shot detection per video
    transnet_threshold: float = 0.5  # transnetv2: transition probability that marks a boundary
    transnet_fps: float = 12.5  # transnetv2: frames scored per second (recall held at 8 fps; cost is per frame)

    def __post_init__(self):
        if self.clip_s <= 0 or self.min_clip_s <= 0:
            raise ValueError("clip_s and min_clip_s must be positive")
        if self.min_clip_s > self.clip_s:
            raise ValueError(f"min_clip_s ({self.min_clip_s}) exceeds clip_s ({self.clip_s})")
        if self.max_clips < 1:
            raise ValueError(f"max_clips must be >= 1, got {self.max_clips}")
        if self.shot_detector not in SHOT_DETECTORS:
            raise ValueError(f"shot_detector must be one of {SHOT_DETECTORS}, got {self.shot_detector!r}")


@dataclass(frozen=True)
class ClipWindow:
    clip_id: str
    video_id: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Shot:
    start_s: float
    end_s: float
    histogram: np.ndarray  # mean colour histogram of its (key) frames

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def clip_id(video_id: str, start_s: float, end_s: float) -> str:
    """Stable id of a window: ``<video_id>_<start ms>_<end ms>``."""
    return f"{video_id}_{int(round(start_s * 1000))}_{int(round(end_s * 1000))}"


def _window(video_id: str, centre: float, duration: float, clip_s: float) -> ClipWindow:
    start = min(max(0.0, centre - clip_s / 2), duration - clip_s)
    start = round(start, 3)
    end = round(start + clip_s, 3)
    return ClipWindow(clip_id(video_id, start, end), video_id, start, end)


def clip_windows(
    video_id: str, duration_s: float, config: ClipConfig = ClipConfig(), shots: list[Shot] | None = None
) -> list[ClipWindow]:
    """Windows for one video of ``duration_s`` seconds (no windows if shorter than the minimum).

    With ``config.max_clips > 1`` and ``shots`` (from :func:`detect_shots`), up to that many
    non-overlapping windows centred on distinct shots: first the longest shot, then each time
    the shot whose colours differ most from the chosen ones (ties: the longer). Without shots,
    one centred window.
    """
    if duration_s is None or not duration_s >= config.min_clip_s:
        return []
    if duration_s <= config.clip_s:
        return [ClipWindow(clip_id(video_id, 0.0, duration_s), video_id, 0.0, round(duration_s, 3))]
    centred = _window(video_id, duration_s / 2, duration_s, config.clip_s)
    if config.max_clips == 1 or not shots or len(shots) < 2:
        return [centred]
    chosen: list[Shot] = []
    windows: list[ClipWindow] = []
    remaining = sorted(shots, key=lambda s: -s.length_s)
    while remaining and len(windows) < config.max_clips:
        if chosen:

            def diversity(s: Shot) -> tuple[float, float]:
                return (min(float(np.abs(s.histogram - c.histogram).sum()) for c in chosen), s.length_s)

            remaining.sort(key=diversity, reverse=True)
        shot = remaining.pop(0)
        w = _window(video_id, (shot.start_s + shot.end_s) / 2, duration_s, config.clip_s)
        if all(w.end_s <= o.start_s or w.start_s >= o.end_s for o in windows):
            windows.append(w)
            chosen.append(shot)
    return sorted(windows, key=lambda w: w.start_s)


def _rgb_histogram(rgb: np.ndarray) -> np.ndarray:
    q = (rgb // 64).reshape(-1, 3).astype(np.int64)  # 4 levels per channel
    h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(np.float64)
    return h / h.sum()


def _histogram(frame) -> np.ndarray:
    return _rgb_histogram(frame.reformat(width=16, height=16, format="rgb24").to_ndarray())


def detect_shots(path: str | os.PathLike, duration_s: float, config: ClipConfig = ClipConfig()) -> list[Shot]:
    """Shots of a video, by ``config.shot_detector``."""
    if config.shot_detector == "transnetv2":
        return _transnet_shots(path, duration_s, config)
    return _keyframe_shots(path, duration_s, config)


def _transnet_shots(path, duration_s: float, config: ClipConfig) -> list[Shot]:
    from acav_assets.core.media.shots import transnet_boundaries

    b = transnet_boundaries(
        path, duration_s=duration_s, threshold=config.transnet_threshold, max_fps=config.transnet_fps
    )
    cuts = [0.0, *[float(t) for t in b.times]]
    ends = cuts[1:] + [duration_s]
    shots = []
    for s, e in zip(cuts, ends):
        inside = (b.frame_times >= s) & (b.frame_times < e)
        if e > s and inside.any():
            shots.append(Shot(s, e, np.mean([_rgb_histogram(f) for f in b.thumbs[inside][::5]], axis=0)))
    return shots


def _keyframe_shots(path: str | os.PathLike, duration_s: float, config: ClipConfig) -> list[Shot]:
    """Shots of a video from its key frames only (the decoder skips every other frame).

    A cut is placed at a key frame whose colour histogram differs from the previous key
    frame's by more than ``config.shot_threshold`` (L1 distance / 2, in [0, 1]). Cut positions
    are therefore resolved to key frames, where encoders usually place them anyway.
    """
    times: list[float] = []
    hists: list[np.ndarray] = []
    with av.open(os.fspath(path)) as container:
        vs = container.streams.video[0]
        vs.codec_context.skip_frame = "NONKEY"
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        for frame in container.decode(vs):
            if frame.time is None:
                continue
            times.append(frame.time - t0)
            hists.append(_histogram(frame))
            if len(times) >= config.max_keyframes:
                break
    if not times:
        return []
    cuts = [0.0]
    members: list[list[np.ndarray]] = [[hists[0]]]
    for i in range(1, len(times)):
        if np.abs(hists[i] - hists[i - 1]).sum() / 2 > config.shot_threshold:
            cuts.append(times[i])
            members.append([])
        members[-1].append(hists[i])
    ends = cuts[1:] + [duration_s]
    return [Shot(s, e, np.mean(m, axis=0)) for s, e, m in zip(cuts, ends, members) if e > s]
