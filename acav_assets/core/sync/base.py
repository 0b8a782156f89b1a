"""What every audio-visual synchronisation estimator answers, and the interface it implements.

An estimator looks at one clip window and says how far its sound is shifted against its picture
(``offset_s``, positive when the sound comes late, as in the ``clip_sync`` table) and how sure it
is that the clip is in sync (``sync_score``). A clip that shows no usable events (no sound, a
steady sound, a still picture) is *unknown*: offset and score are None, never "out of sync".
The weight-free estimator (:mod:`acav_assets.core.sync.onset_motion`) is one implementation; a
trained audio-visual model that scores shifted copies of a clip (:mod:`acav_assets.core.sync.avts`)
is the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SyncEstimate", "SyncEstimator"]


@dataclass(frozen=True)
class SyncEstimate:
    """One clip's answer. ``offset_s`` and ``sync_score`` are both None (unknown) or both set."""

    offset_s: float | None  # the sound's lag against the picture, seconds; > 0: the sound comes late
    sync_score: float | None  # in [0, 1]; high: in sync, low: shifted, about 0.5: cannot tell
    n_events: int  # audio onsets that meet a visual event at the estimated offset (the evidence)
    method: str  # which estimator answered, e.g. "onset-motion"
    reason: str = ""  # why the answer is unknown ("" when it is known)

    @property
    def known(self) -> bool:
        return self.offset_s is not None


@runtime_checkable
class SyncEstimator(Protocol):
    """Estimates the audio offset of a clip window ``[start_s, end_s)`` of a video file (seconds
    from the first video frame, as the ``clips`` table has them)."""

    method: str

    def estimate(self, path: str | os.PathLike, start_s: float, end_s: float) -> SyncEstimate: ...
