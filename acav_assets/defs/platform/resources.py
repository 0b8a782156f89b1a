"""Resources: where the warehouse and the landing area are, how to compute, which extractors."""

import functools
import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from acav_assets.core.features.base import Extractor, resolve_device
from acav_assets.core.features.profiles import DEFAULT_PROFILE, build_profile, profile_entries
from acav_assets.core.media.landing import Landing
from acav_assets.core.warehouse.local_state import check_writable_folder
from acav_assets.core.warehouse.tables import Warehouse

__all__ = [
    "ComputeResource",
    "ExtractorResource",
    "LandingResource",
    "WarehouseResource",
    "default_resources",
    "json_from_env",
]


class WarehouseResource(dg.ConfigurableResource):
    """The Delta Lake warehouse: a local folder or an object-store URI (``s3://…``) with
    delta-rs storage options (credentials come from the environment)."""

    root: str = Field(description="Folder or URI holding one Delta table per asset")
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs storage options")
    storage_options_env: str = Field(
        default="",
        description="name of an environment variable holding more "
        "storage options as JSON, read when used: keys never appear in the UI",
    )

    def get(self) -> Warehouse:
        opts = {**self.storage_options, **{k: str(v) for k, v in json_from_env(self.storage_options_env).items()}}
        return Warehouse(self.root, opts or None)

    def check(self) -> None:
        """A local warehouse must be (or be creatable as) a writable folder; nothing is created."""
        if not self.root.strip():
            raise ValueError("the warehouse root is empty: give a folder or an object-store URI")
        if "://" not in self.root or self.root.startswith("file://"):
            check_writable_folder(self.root.removeprefix("file://"), "warehouse")


class LandingResource(dg.ConfigurableResource):
    """The landing area: one folder (or key prefix) per batch of raw videos, on a local folder or
    an fsspec URI (``s3://bucket/landing``). A remote batch is staged into ``cache_dir`` by the
    steps that read media, and dropped after its sync estimates (the last of them) unless
    ``keep_staged``."""

    root: str = Field(description="Folder or URI whose sub-folders are batches of videos")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options, e.g. s3fs key/secret/endpoint_url"
    )
    storage_options_env: str = Field(
        default="",
        description="name of an environment variable holding more "
        "fsspec options as JSON, read when used: keys never appear in the UI",
    )
    cache_dir: str = Field(default="", description="local folder for staged remote batches ('' = default)")
    keep_staged: bool = Field(default=False, description="keep a staged remote batch after its ingest")
    allowed_link_roots: list[str] = Field(
        default_factory=list,
        description="folders outside the landing area that links in it may point "
        "into; any other link out of it gets status outside_landing and "
        "is never opened, by any step",
    )

    def get(self) -> Landing:
        opts = {**self.storage_options, **json_from_env(self.storage_options_env)}
        return Landing(self.root, opts, self.cache_dir or None, allowed_link_roots=self.allowed_link_roots)

    def check(self) -> None:
        for root in self.allowed_link_roots:
            if not os.path.isabs(root) or not os.path.isdir(root):
                raise ValueError(f"allowed_link_roots must name existing folders by absolute path, got {root!r}")


class ComputeResource(dg.ConfigurableResource):
    """Where and how embeddings are computed."""

    device: str = Field(default="auto", description="'auto' (CUDA when available), 'cuda', 'cuda:N' or 'cpu'")
    decode_workers: int = Field(default=2, description="decoding threads per embedding step")
    batch_size: int = Field(default=16, description="clips per extractor batch (halved on CUDA OOM)")

    def check(self) -> None:
        try:
            resolve_device(self.device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"device {self.device!r} cannot be used: {exc}") from None
        if self.decode_workers < 1 or self.batch_size < 1:
            raise ValueError(
                f"decode_workers and batch_size must be >= 1, got {self.decode_workers}, {self.batch_size}"
            )


class ExtractorResource(dg.ConfigurableResource):
    """The extractor profile and per-extractor options (e.g. local weight files)."""

    profile: str = Field(
        default=DEFAULT_PROFILE,
        description="extractor profile: weightfree, packaged, reference, clip-clap, clip-ast, pretrained; "
        "join with '+' (see docs/embeddings.md)",
    )
    options_json: str = Field(default="{}", description='JSON: {"audio/vggish": {"weights": "/models/vggish.pt"}}')

    def check(self) -> dict[str, dict]:
        """Validate the profile and the options without loading any network; returns the options.
        Raises ValueError naming what is wrong."""
        entries = profile_entries(self.profile)  # an unknown profile: ValueError naming it
        try:
            options = json.loads(self.options_json or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"extractor options are not valid JSON ({exc}): {self.options_json!r}") from None
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise ValueError(
                "extractor options must be a JSON object of objects, e.g. "
                '{"audio/vggish": {"weights": "/models/vggish.pt"}}'
            )
        unknown = sorted(set(options) - {name for name, _ in entries})
        if unknown:
            raise ValueError(f"extractor options name extractors not in profile {self.profile!r}: {unknown}")
        return options

    def build(self, device: str) -> list[Extractor]:
        """The profile's extractors on ``device``, built once per process: the embedding step, its
        check and ``acav curate`` share them instead of loading the networks again."""
        self.check()
        return list(_built_profile(self.profile, self.options_json or "{}", str(resolve_device(device))))


@functools.lru_cache(maxsize=4)
def _built_profile(profile: str, options_json: str, device: str) -> tuple[Extractor, ...]:
    return tuple(build_profile(profile, device, json.loads(options_json)))


def default_profile() -> str:
    """``$ACAV_PROFILE``, else the platform's default profile (``packaged+weightfree+structure``)."""
    return os.environ.get("ACAV_PROFILE", "").strip() or DEFAULT_PROFILE


def json_from_env(name: str) -> dict:
    """The JSON object in environment variable ``name`` ({} when unset or blank)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _env(name: str, default: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set: the resource config the UI shows names the
    variable, and each run reads its value where it runs (a worker pod's environment); else
    ``default``."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment, defaulting to folders under ./.acav for a local
    `dg dev`: ACAV_WAREHOUSE and ACAV_LANDING (folder or URI), ACAV_WAREHOUSE_STORAGE_OPTIONS
    (JSON, delta-rs options) and ACAV_LANDING_STORAGE_OPTIONS (JSON, fsspec options),
    ACAV_LANDING_CACHE, ACAV_DEVICE, ACAV_PROFILE, ACAV_EXTRACTOR_OPTIONS. A variable that is set
    is given as ``dg.EnvVar`` (resolved when a run, sensor or schedule uses the resource; outside
    of those, ``dg.build_resources`` resolves them)."""
    base = Path(os.environ.get("ACAV_HOME", ".acav"))
    for name in ("ACAV_WAREHOUSE_STORAGE_OPTIONS", "ACAV_LANDING_STORAGE_OPTIONS"):
        json_from_env(name)  # a malformed value fails here, clearly, not in the first step that reads it
    return {
        # storage options may hold keys: the resources name the variables, read when used, so
        # the values never enter the resource config the UI shows
        "warehouse": WarehouseResource(
            root=_env("ACAV_WAREHOUSE", str(base / "warehouse")),
            storage_options_env="ACAV_WAREHOUSE_STORAGE_OPTIONS",
        ),
        "landing": LandingResource(
            root=_env("ACAV_LANDING", str(base / "landing")),
            storage_options_env="ACAV_LANDING_STORAGE_OPTIONS",
            cache_dir=_env("ACAV_LANDING_CACHE", ""),
            # folders links in the landing area may point into, separated by ':'
            allowed_link_roots=[r for r in os.environ.get("ACAV_ALLOWED_LINK_ROOTS", "").split(os.pathsep) if r],
        ),
        "compute": ComputeResource(device=_env("ACAV_DEVICE", "auto")),
        "extractors": ExtractorResource(
            profile=_env("ACAV_PROFILE", default_profile()), options_json=_env("ACAV_EXTRACTOR_OPTIONS", "{}")
        ),
    }
