"""The catalog a data engineer expects on every asset definition: owners, the Delta table's name
and its described columns (shown before anything is materialized), and a link to the source."""

import inspect
import warnings
from collections.abc import Sequence

import dagster as dg

from acav_assets.defs.platform.metadata import table_schema

__all__ = ["OWNERS", "TABLE_OF", "catalogued"]

#: Who answers for the assets (the UI's owner column; change it to your team's).
OWNERS = ["team:acav-curation"]
#: The Delta table each asset writes (``downstream_report`` writes none: its table is its metadata).
TABLE_OF = {
    "videos": "videos",
    "clips": "clips",
    "clip_embeddings": "clip_embeddings",
    "clip_sync": "clip_sync",
    "cluster_centroids": "cluster_centroids",
    "cluster_assignments": "cluster_assignments",
    "curated_subset": "curated_subset",
    "selection_lineage": "selection_lineage",
    "curated_clips": "export_manifest",
}

# source code references are a beta in Dagster 1.13: chosen knowingly, not repeated at every
# import of the code location
warnings.filterwarnings("ignore", message=".*(LocalFileCodeReference|CodeReferencesMetadataValue).*")


def _catalog(spec: dg.AssetSpec) -> dg.AssetSpec:
    table = TABLE_OF.get(spec.key.path[-1])
    if table is None:
        return spec.replace_attributes(owners=OWNERS)
    return spec.replace_attributes(owners=OWNERS).merge_attributes(
        metadata={"dagster/table_name": table, "dagster/column_schema": table_schema(table)}
    )


def _source(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """A link to the function that computes ``asset``, where it is written (its decorators, such
    as ``final_when_disk_full``, unwrapped: Dagster's own references would name their file)."""
    fn = inspect.unwrap(asset.op.compute_fn.decorated_fn)
    ref = dg.LocalFileCodeReference(file_path=inspect.getsourcefile(fn), line_number=inspect.getsourcelines(fn)[1])
    return dg.map_asset_specs(
        lambda spec: spec.merge_attributes(
            metadata={"dagster/code_references": dg.CodeReferencesMetadataValue(code_references=[ref])}
        ),
        [asset],
    )[0]


def catalogued(assets: Sequence) -> list:
    """``assets`` with the catalog's attributes and a reference to their source (the UI links to
    the file and line)."""
    return [_source(a) for a in dg.map_asset_specs(_catalog, list(assets))]
