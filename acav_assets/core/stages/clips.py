"""Stage ``clips``: the clip windows of a batch's ``ok`` videos."""

from __future__ import annotations

import os
from pathlib import Path

import av

from acav_assets.core.media.clips import ClipConfig, clip_windows, detect_shots
from acav_assets.core.media.probe import OK, resolves_inside

__all__ = ["clip_rows"]


def clip_rows(
    video_rows: list[dict],
    landing_root: str | os.PathLike,
    config: ClipConfig = ClipConfig(),
    allowed_roots: tuple[str, ...] = (),
) -> list[dict]:
    """Clip windows of the batch's ``ok`` videos (shot detection only when ``max_clips > 1``; a
    video that can no longer be read, or now resolves outside ``landing_root`` and
    ``allowed_roots``, gets centred windows unread, and fails later, per clip, at embedding)."""
    out = []
    roots = (str(landing_root), *allowed_roots)
    for v in video_rows:
        if v["status"] != OK:
            continue
        shots = None
        if config.max_clips > 1 and resolves_inside(Path(landing_root) / v["path"], roots):
            try:
                shots = detect_shots(Path(landing_root) / v["path"], v["duration_s"], config)
            except (OSError, ValueError, RuntimeError, av.error.FFmpegError):  # unreadable since probing (or a GPU
                # out of memory): centred windows instead
                shots = None
        for w in clip_windows(v["video_id"], v["duration_s"], config, shots):
            out.append(
                {
                    "batch": v["batch"],
                    "clip_id": w.clip_id,
                    "video_id": v["video_id"],
                    "path": v["path"],
                    "start_s": w.start_s,
                    "end_s": w.end_s,
                }
            )
    return out
