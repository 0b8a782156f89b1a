"""Resources: where the warehouse and the landing area are, how to compute, which extractors."""


import json
import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from acav_assets.core.features import Extractor, build_profile
from acav_assets.core.tables import Warehouse

__all__ = ["ComputeResource", "ExtractorResource", "LandingResource", "WarehouseResource", "default_resources"]


class WarehouseResource(dg.ConfigurableResource):
    """The Delta Lake warehouse: a local folder or an object-store URI (``s3://…``) with
    delta-rs storage options (credentials come from the environment)."""

    root: str = Field(description="Folder or URI holding one Delta table per asset")
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs storage options")

    def get(self) -> Warehouse:
        return Warehouse(self.root, self.storage_options or None)


class LandingResource(dg.ConfigurableResource):
    """The landing area: one folder per batch of raw videos."""

    root: str = Field(description="Folder whose sub-folders are batches of videos")

    def path(self) -> Path:
        return Path(self.root)


class ComputeResource(dg.ConfigurableResource):
    """Where and how embeddings are computed."""

    device: str = Field(default="auto", description="'auto' (CUDA when available), 'cuda', 'cuda:N' or 'cpu'")
    decode_workers: int = Field(default=2, description="decoding threads per embedding step")
    batch_size: int = Field(default=16, description="clips per extractor batch (halved on CUDA OOM)")


class ExtractorResource(dg.ConfigurableResource):
    """The extractor profile and per-extractor options (e.g. local weight files)."""

    profile: str = Field(default="weightfree", description="'weightfree' (offline default) or 'pretrained'")
    options_json: str = Field(default="{}", description='JSON: {"audio/vggish": {"weights": "/models/vggish.pt"}}')

    def build(self, device: str) -> list[Extractor]:
        try:
            options = json.loads(self.options_json or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"extractor options_json is not valid JSON: {exc}") from None
        return build_profile(self.profile, device, options)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment (ACAV_WAREHOUSE, ACAV_LANDING, ACAV_DEVICE, ACAV_PROFILE),
    defaulting to folders under ./.acav for a local `dagster dev`."""
    base = Path(os.environ.get("ACAV_HOME", ".acav"))
    return {
        "warehouse": WarehouseResource(root=os.environ.get("ACAV_WAREHOUSE", str(base / "warehouse"))),
        "landing": LandingResource(root=os.environ.get("ACAV_LANDING", str(base / "landing"))),
        "compute": ComputeResource(device=os.environ.get("ACAV_DEVICE", "auto")),
        "extractors": ExtractorResource(profile=os.environ.get("ACAV_PROFILE", "weightfree"),
                                        options_json=os.environ.get("ACAV_EXTRACTOR_OPTIONS", "{}")),
    }
