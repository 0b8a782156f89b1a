"""Training data for the downstream check: windows of clips read from the WebDataset shards that
``acav export`` writes, decoded with PyAV in ``DataLoader`` workers.

A training sample is one window of one clip: ``frames`` (T pictures spread over ``window_s``
seconds, resized to the short side and centre-cropped to ``size`` x ``size``), the sound of the
same window (``audio``, mono at ``sample_rate``), and the sound of another window of the same
clip that starts at least ``min_shift_s`` earlier or later (``audio_shift``): the hard negative
of the curriculum. Only the media (``.mp4``, or ``.frames.npy`` / ``.audio.npy`` when the export
wrote arrays) and the sample key are read; the loader never yields anything else, so whatever a
shard's JSON holds (or any label file beside it) cannot reach the model.

Randomness is a function of the seed: the shard order and the shuffle buffer per epoch and
worker, and the window offsets per (seed, epoch, clip), so a run is repeatable with a given
number of workers.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av
import numpy as np
import torch

from acav_assets.core.media.decode import display_turns

__all__ = [
    "DecodedMedia",
    "SAMPLE_KEYS",
    "ShardWindows",
    "decode_media",
    "draw_offsets",
    "media_window",
]

#: The keys of every training sample: media, the window's times, and the clip id. Nothing else.
SAMPLE_KEYS = frozenset({"clip_id", "frames", "audio", "audio_shift", "has_shift", "start_s", "shift_s"})


@dataclass
class DecodedMedia:
    """A whole clip, decoded: its video frames (kept as decoder frames, converted on demand),
    their times from the first frame, and its sound (mono) starting at ``audio_start_s``."""

    frames: list  # av.VideoFrame, or (T, H, W, 3) uint8 arrays when the shard carried arrays
    frame_times: np.ndarray
    audio: np.ndarray  # (N,) float32 mono at sample_rate
    audio_start_s: float  # time of audio[0] from the first video frame
    sample_rate: int

    @property
    def duration_s(self) -> float:
        """The span both streams cover (the shorter of the two)."""
        if not len(self.frame_times):
            return 0.0
        step = float(np.median(np.diff(self.frame_times))) if len(self.frame_times) > 1 else 0.0
        video_end = float(self.frame_times[-1]) + step
        audio_end = self.audio_start_s + len(self.audio) / self.sample_rate
        return max(0.0, min(video_end, audio_end))


def decode_media(source: bytes | str | os.PathLike, *, sample_rate: int) -> DecodedMedia:
    """Decode every video frame and the whole sound (mono, resampled to ``sample_rate``) of a
    video given as bytes (a shard's ``.mp4``) or as a path. Frames stay decoder frames so only
    those a window uses are scaled."""
    src = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
    frames, times, chunks = [], [], []
    audio_t0: float | None = None
    with av.open(src) as container:
        vs = container.streams.video[0]
        vs.thread_type = "NONE"  # small clips: codec threads cost more to start than they save
        aus = container.streams.audio[0] if container.streams.audio else None
        resampler = None
        if aus is not None and aus.codec_context.sample_rate != sample_rate:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in container.decode(*([vs] + ([aus] if aus is not None else []))):
            if frame.time is None:
                continue
            if isinstance(frame, av.VideoFrame):
                frames.append(frame)
                times.append(frame.time)
                continue
            if audio_t0 is None:
                audio_t0 = frame.time
            if resampler is None:  # already at the rate: only the channels are mixed down (below)
                chunks.append(_planes(frame))
            else:
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        if resampler is not None:
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
        elif chunks:
            chunks = [_mono(np.concatenate(chunks, axis=1))]
    if not frames:
        raise ValueError("no video frame decoded")
    t0 = times[0]
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return DecodedMedia(
        frames,
        np.asarray(times, np.float64) - t0,
        audio,
        (audio_t0 - t0) if audio_t0 is not None else 0.0,
        sample_rate,
    )


def _planes(frame) -> np.ndarray:
    """An audio frame's samples as (channels, samples), in its own sample type."""
    x = frame.to_ndarray()
    if frame.format.is_packed:  # interleaved: (1, samples x channels)
        x = x.reshape(-1, len(frame.layout.channels)).T
    return x


def _mono(x: np.ndarray) -> np.ndarray:
    """(channels, samples) of any sample type -> float32 mono in [-1, 1], the channels' mean."""
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / (float(np.iinfo(x.dtype).max) + 1.0)
    return x.astype(np.float32).mean(axis=0)


def _media_from_arrays(frames_npy: bytes, audio_npy: bytes, meta: bytes, sample_rate: int) -> DecodedMedia:
    """A clip from the arrays an export with ``--with-arrays`` stores; the JSON is read for the
    frame rate and the sound's sample rate only."""
    info = json.loads(meta)
    fps, sr = float(info["fps"]), int(info["sample_rate"])
    frames = np.load(io.BytesIO(frames_npy))
    audio = np.load(io.BytesIO(audio_npy)).astype(np.float32).mean(axis=0)
    if sr != sample_rate:
        import torchaudio

        audio = torchaudio.functional.resample(torch.from_numpy(audio), sr, sample_rate).numpy()
    return DecodedMedia(list(frames), np.arange(len(frames)) / fps, audio, 0.0, sample_rate)


_reformatter = None


def _scaled(frame, width: int, height: int) -> np.ndarray:
    """``frame`` as RGB, scaled to ``width`` x ``height`` as displayed (turned where its display
    matrix says, as :func:`acav_assets.core.media.decode.upright` does), by one reformatter per
    process: it keeps its scaler between frames of the same size, many times faster than a new
    one per frame."""
    global _reformatter
    if _reformatter is None:
        from av.video.reformatter import VideoReformatter

        _reformatter = VideoReformatter()
    k = display_turns(frame)
    sw, sh = (height, width) if k % 2 else (width, height)
    img = _reformatter.reformat(frame, width=sw, height=sh, format="rgb24", interpolation="AREA").to_ndarray()
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


def _picture(frame, size: int) -> np.ndarray:
    """One frame scaled so its short side is ``size``, centre-cropped to ``size`` x ``size``."""
    if isinstance(frame, np.ndarray):
        h, w = frame.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
        scale = size / min(h, w)
        x = torch.nn.functional.interpolate(
            x, size=(max(size, round(h * scale)), max(size, round(w * scale))), mode="area"
        )
        img = x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    else:
        w, h = (frame.height, frame.width) if display_turns(frame) % 2 else (frame.width, frame.height)
        scale = size / min(w, h)
        img = _scaled(frame, max(size, round(w * scale)), max(size, round(h * scale)))
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(img[top : top + size, left : left + size])


def media_window(
    media: DecodedMedia, start_s: float, window_s: float, n_frames: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_frames`` pictures shown at ``start_s + k * window_s / n_frames`` (T, size, size, 3
    uint8) and the sound of ``[start_s, start_s + window_s)`` (zero-padded where it runs out)."""
    targets = start_s + np.arange(n_frames) * window_s / n_frames
    idx = np.clip(np.searchsorted(media.frame_times, targets + 1e-6, side="right") - 1, 0, len(media.frames) - 1)
    pictures = {i: _picture(media.frames[i], size) for i in set(idx.tolist())}
    frames = np.stack([pictures[i] for i in idx.tolist()])
    return frames, audio_window(media, start_s, window_s)


def audio_window(media: DecodedMedia, start_s: float, window_s: float) -> np.ndarray:
    """The sound of ``[start_s, start_s + window_s)``, zero-padded where the track runs out."""
    n = int(round(window_s * media.sample_rate))
    first = int(round((start_s - media.audio_start_s) * media.sample_rate))
    out = np.zeros(n, np.float32)
    lo, hi = max(first, 0), min(first + n, len(media.audio))
    if hi > lo:
        out[lo - first : hi - first] = media.audio[lo:hi]
    return out


def draw_offsets(
    duration_s: float, window_s: float, min_shift_s: float, rng: np.random.Generator
) -> tuple[float, float | None]:
    """A window start ``t`` in ``[0, duration_s - window_s]``, and the start of a second window of
    the same clip at least ``min_shift_s`` from ``t`` (``None`` when the clip is too short for
    one): the shifted sound the curriculum uses as a hard negative."""
    span = max(0.0, duration_s - window_s)
    t = float(rng.uniform(0.0, span)) if span > 0 else 0.0
    before = max(0.0, t - min_shift_s)  # [0, t - m]
    after = max(0.0, span - t - min_shift_s)  # [t + m, span]
    if before + after <= 1e-9:
        return t, None
    u = float(rng.uniform(0.0, before + after))
    return t, (u if u < before else t + min_shift_s + (u - before))


_MP4 = (".mp4",)
_ARRAYS = (".frames.npy", ".audio.npy", ".json")  # the JSON for the arrays' frame and sample rates


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


class ShardWindows(torch.utils.data.IterableDataset):
    """An endless stream of training windows from WebDataset shards (``webdataset.WebDataset``),
    decoded in the ``DataLoader`` worker that reads them (``use_arrays``: the ``.frames.npy`` /
    ``.audio.npy`` an export with ``--with-arrays`` stores, instead of the ``.mp4``). Each worker reads its own share of the
    shards (``shards[worker::workers]``) epoch after epoch, in a seeded order and through a
    seeded shuffle buffer; each clip gives ``windows_per_clip`` windows per epoch.
    """

    def __init__(
        self,
        shards: Sequence[str | os.PathLike],
        *,
        seed: int,
        window_s: float,
        n_frames: int,
        size: int,
        sample_rate: int,
        min_shift_s: float,
        windows_per_clip: int = 1,
        shuffle_buffer: int = 256,
        use_arrays: bool = False,
    ):
        super().__init__()
        if not shards:
            raise ValueError("no shards to train from")
        self.shards = [os.fspath(s) for s in shards]
        self.seed = int(seed)
        self.window_s, self.n_frames, self.size = float(window_s), int(n_frames), int(size)
        self.sample_rate, self.min_shift_s = int(sample_rate), float(min_shift_s)
        self.windows_per_clip, self.shuffle_buffer = int(windows_per_clip), int(shuffle_buffer)
        self.use_arrays = bool(use_arrays)

    def _windows(self, sample: dict, epoch: int) -> Iterator[dict]:
        """The ``windows_per_clip`` training windows of one shard sample."""
        key = sample["__key__"]
        if "mp4" not in sample:  # stored arrays: no decoding needed
            media = _media_from_arrays(sample["frames.npy"], sample["audio.npy"], sample["json"], self.sample_rate)
        else:
            media = decode_media(sample["mp4"], sample_rate=self.sample_rate)
        rng = np.random.default_rng([self.seed, epoch, _crc(key)])
        for _ in range(self.windows_per_clip):
            t, shifted = draw_offsets(media.duration_s, self.window_s, self.min_shift_s, rng)
            frames, audio = media_window(media, t, self.window_s, self.n_frames, self.size)
            shift_audio = audio_window(media, shifted, self.window_s) if shifted is not None else np.zeros_like(audio)
            yield {
                "clip_id": key,
                "frames": torch.from_numpy(frames),
                "audio": torch.from_numpy(audio),
                "audio_shift": torch.from_numpy(shift_audio),
                "has_shift": shifted is not None,
                "start_s": t,
                "shift_s": shifted if shifted is not None else float("nan"),
            }

    def _epoch(self, shards: list[str], epoch: int, worker: int) -> Iterator[dict]:
        """One pass over ``shards``: samples shuffled (a buffer of encoded samples), decoded into
        windows, the windows shuffled again (so one clip's windows spread over batches)."""
        import webdataset as wds

        # seeding random.Random with a string is deterministic across processes (no hash salt)
        rng = random.Random(f"{self.seed}/{epoch}/{worker}")
        order = rng.sample(shards, len(shards))
        # only the media members are taken from a shard (and, for stored arrays, the JSON with
        # their frame and sample rates): select_files skips every other member unread
        members = _ARRAYS if self.use_arrays else _MP4

        def windows(samples):
            for sample in samples:
                if "mp4" in sample or {"frames.npy", "audio.npy", "json"} <= sample.keys():
                    yield from self._windows(sample, epoch)

        ds = (
            wds.WebDataset(
                order,
                shardshuffle=False,
                nodesplitter=None,
                workersplitter=None,
                empty_check=False,
                select_files=lambda name: name.endswith(members),
            )
            .shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=random.Random(rng.random()))
            .compose(windows)
        )
        if self.windows_per_clip > 1:
            ds = ds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, rng=random.Random(rng.random()))
        yield from ds

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        mine = self.shards[worker::workers]
        if not mine:
            return
        for epoch in itertools.count():
            yield from self._epoch(mine, epoch, worker)
