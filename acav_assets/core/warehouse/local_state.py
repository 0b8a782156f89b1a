"""Where the state derived from a warehouse is kept on this machine.

A local warehouse keeps it inside its own folder (``<warehouse>/<name>``). An object-store
warehouse (``s3://…``, ``gs://…``) cannot hold a SQLite file or a Dagster home, so each machine
keeps its own copy under a cache folder, one subfolder per warehouse URI (a digest of it):
``$<env>`` when set, else ``~/.cache/acav_assets/<name>``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["local_state_dir"]


def local_state_dir(root: str, name: str, env: str | None = None) -> Path:
    """The folder for state ``name`` (``_indexes``, ``_dagster``) of the warehouse at ``root``;
    ``env`` names the variable that moves the object-store cache."""
    if root.startswith("file://"):
        root = root[len("file://"):]
    if "://" not in root:
        return Path(root) / name
    base = Path((os.environ.get(env) if env else None) or Path.home() / ".cache" / "acav_assets" / name.lstrip("_"))
    return base / hashlib.sha256(root.rstrip("/").encode()).hexdigest()[:16]
