"""A run config checked before anything runs: every door (the UI's launchpad aside, which Dagster
checks itself) refuses an unknown field, a wrong type or a value that cannot work with one
:class:`SettingError` naming the op and the field."""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from acav_assets.core.stages.curation import held_settings
from acav_assets.defs import curation, export, features, ingest, sync
from acav_assets.defs.platform.resources import (
    ComputeResource,
    ExtractorResource,
    LandingResource,
    WarehouseResource,
    default_profile,
)

__all__ = ["RUN_CONFIG_CLASSES", "SettingError", "check_run_config", "check_settings", "resources_for"]

#: The run config of each asset that takes one (op name -> its Config class).
RUN_CONFIG_CLASSES: dict[str, type[dg.Config]] = {
    "videos": ingest.VideosConfig,
    "clips": ingest.ClipsConfig,
    "clip_sync": sync.ClipSyncConfig,
    "cluster_centroids": features.ClusteringConfig,
    "curated_subset": curation.SelectionConfig,
    "curated_clips": export.CuratedClipsConfig,
}


class SettingError(ValueError):
    """A run-config value that cannot work: ``op`` and ``field`` say which (``field`` None when
    the problem is between fields)."""

    def __init__(self, op: str, field: str | None, problem: str):
        super().__init__(f"{op}: {problem}")
        self.op, self.field, self.problem = op, field, problem


def check_run_config(run_config: dict, held: dict | None = None) -> None:
    """Validate the ``ops`` section of a run config before anything runs: raises
    :class:`SettingError` for an unknown field, a wrong type or a value that cannot work. The
    selection's settings are checked together with ``held``, those the warehouse holds."""
    import pydantic

    for op, section in (run_config or {}).get("ops", {}).items():
        cls = RUN_CONFIG_CLASSES.get(op)
        if cls is None:
            continue
        given = (section or {}).get("config") or {}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise SettingError(
                op, unknown[0], f"{unknown[0]}: not a setting of {op} (expected one of {sorted(cls.model_fields)})"
            )
        try:
            cfg = cls(**given)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err.get("loc", ())) or None
            raise SettingError(op, field, f"{field}: {err.get('msg')} (got {err.get('input')!r})") from None
        try:
            cfg.check(held) if isinstance(cfg, curation.SelectionConfig) else cfg.check()
        except ValueError as exc:
            first = str(exc).split(" ", 1)[0]
            raise SettingError(op, first if first in cls.model_fields else None, str(exc)) from None


def resources_for(
    landing_root: str,
    warehouse_root: str,
    *,
    profile: str | None = None,
    device: str = "auto",
    extractor_options: str = "{}",
    storage_options: dict | None = None,
    landing_storage_options: dict | None = None,
    landing_cache: str = "",
    allowed_link_roots: Sequence[str] = (),
) -> dict:
    """Resources for one landing area and warehouse: ``storage_options`` are the warehouse's
    (delta-rs), ``landing_storage_options`` the landing area's (fsspec)."""
    return {
        "warehouse": WarehouseResource(root=warehouse_root, storage_options=storage_options or {}),
        "landing": LandingResource(
            root=landing_root,
            storage_options=landing_storage_options or {},
            cache_dir=landing_cache,
            allowed_link_roots=list(allowed_link_roots),
        ),
        "compute": ComputeResource(device=device),
        "extractors": ExtractorResource(profile=profile or default_profile(), options_json=extractor_options),
    }


def check_settings(run_config: dict | None, resources: dict) -> None:
    """Every setting of a curation, validated before anything is written: the run config of each
    asset (the selection's with the settings the warehouse holds), the extractor profile and its
    options, the compute device, the warehouse folder, the landing area's allowed link roots.
    Raises :class:`~acav_assets.defs.run_config.SettingError` naming the op or resource and what is
    wrong."""
    for name in ("warehouse", "extractors", "compute", "landing"):
        try:
            resources[name].check()
        except ValueError as exc:
            raise SettingError(name, None, str(exc)) from None
    root = resources["warehouse"].root
    held = held_settings(resources["warehouse"].get()) if "://" in root or Path(root).is_dir() else {}
    check_run_config(run_config or {}, held)
