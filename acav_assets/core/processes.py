"""Worker processes that end with their parent.

A pool's workers are separate processes: when the process that started them is killed
(``kill -9``, an out-of-memory kill, a container stopped), nothing tells them, and a pool of
encoders or fingerprinters would keep running, each holding its memory. Every worker this
package starts calls :func:`die_with_parent` first: a daemon thread that looks at the parent
process id twice a second and ends the worker at once when the parent is gone (its children
are re-parented, so the id changes). It needs no signal and no Linux-only call, and it does not
depend on which thread of the parent started the worker (``PR_SET_PDEATHSIG`` does: it fires
when that *thread* exits, which would kill healthy workers of a pool started from a short-lived
thread).
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["die_with_parent", "WATCH_INTERVAL_S"]

WATCH_INTERVAL_S = 0.5


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # no clean-up: the work is lost with the parent, and must not be half-committed
        time.sleep(WATCH_INTERVAL_S)


def die_with_parent(parent: int | None = None) -> None:
    """End this process when its parent ends. ``parent``: the pid the parent had when it
    started this worker (checked at once: the parent may already be gone); default: the
    current parent. Safe to call more than once (one watcher per process)."""
    global _watcher_pid
    expected = os.getppid() if parent is None else parent
    if os.getppid() != expected:
        os._exit(1)
    if _watcher_pid == os.getpid():  # a forked child inherits the flag but not the thread: compare pids
        return
    _watcher_pid = os.getpid()
    threading.Thread(target=_watch, args=(expected,), name="die-with-parent", daemon=True).start()


_watcher_pid: int | None = None  # the process whose watcher runs
