"""What several commands share: the Dagster instance runs are recorded in, an existing warehouse,
and the ground truth a generated landing area carries."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["dagster_instance", "existing_warehouse", "ground_truth"]


def dagster_instance(dagster_home: str | None, default_home: Path | None = None):
    """The Dagster instance runs are recorded in: ``--dagster-home``, else ``$DAGSTER_HOME``, else
    ``default_home``, else an ephemeral one."""
    import dagster as dg

    def prepared(home: Path) -> Path:
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():  # a new home: no telemetry (nothing leaves the machine)
            config.write_text("telemetry:\n  enabled: false\n")
        return home

    home = dagster_home or os.environ.get("DAGSTER_HOME")
    if not home and default_home is not None:  # not exported: the process environment stays as it was
        return dg.DagsterInstance.from_config(str(prepared(default_home))), str(default_home)
    if not home:
        return dg.DagsterInstance.ephemeral(), None
    prepared(Path(home))
    os.environ["DAGSTER_HOME"] = str(Path(home).resolve())
    return dg.DagsterInstance.get(), os.environ["DAGSTER_HOME"]


def existing_warehouse(root: str):
    from acav_assets.core.warehouse.tables import Warehouse

    if "://" not in root and not Path(root).is_dir():
        raise ValueError(f"warehouse {root} does not exist (run `acav curate ... --warehouse {root}` first)")
    return Warehouse(root)


def ground_truth(landing: Path, batches: list[str]) -> dict[str, bool]:
    """Whether each video's sound matches its picture, from the ``ground_truth.csv`` the corpus
    generators write beside their videos; a file of another kind (or none) gives nothing."""
    from acav_assets.core.generators.demo import read_ground_truth

    truth = {}
    for b in batches:
        f = landing / b / "ground_truth.csv"
        if f.is_file():
            try:
                truth.update({f"{b}/{name}": v.matched for name, v in read_ground_truth(f).items()})
            except (KeyError, ValueError):  # a ground truth of another kind: no precision to print
                continue
    return truth
