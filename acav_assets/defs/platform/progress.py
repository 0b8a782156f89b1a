"""Progress of long steps, told twice: in the Dagster logs (every few seconds and at the end,
with the rate) and, when ``ACAV_PROGRESS=1`` (``acav curate`` sets it) and stderr is a
terminal, as a tqdm bar."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

__all__ = ["Progress"]


class Progress:
    """A ``progress(done, total)`` callback for the core's long loops."""

    def __init__(self, log: Callable[[str], None], what: str, unit: str, every_s: float = 10.0):
        self.log, self.what, self.unit, self.every_s = log, what, unit, every_s
        self.t0 = self.last = time.monotonic()
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.bar is None and os.environ.get("ACAV_PROGRESS") == "1":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.what, unit=self.unit, disable=None, leave=False)
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)
        if now - self.last >= self.every_s or done == total:
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            self.log(f"{self.what}: {done}/{total} {self.unit}s ({rate:.1f} {self.unit}s/s)")
        if done == total and self.bar is not None:
            self.bar.close()
            self.bar = None
