"""The label matrix the selection runs on: built batch by batch from Delta, narrow integers, clip
ids spilled to scratch and read back on demand, as they were in the version the labels came from."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from acav_assets.core.stages.labels import label_matrix
from acav_assets.core.warehouse.tables import Warehouse


def _rows(batch: str, clips: list[str], clustering: str, labels: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "batch": batch,
            "clip_id": clips,
            "clustering_id": clustering,
            "feature_space": "x/y/z",
            "cluster": pl.Series(labels, dtype=pl.Int32),
            "distance": pl.Series([0.0] * len(clips), dtype=pl.Float32),
        }
    )


@pytest.fixture
def wh(tmp_path):
    wh = Warehouse(str(tmp_path / "wh"))
    # b1: three clips, labelled by both clusterings, written out of order
    wh.write_batch(
        "cluster_assignments",
        "b1",
        pl.concat([_rows("b1", ["c", "a", "b"], "A", [2, 0, 1]), _rows("b1", ["b", "c", "a"], "V", [11, 12, 10])]),
    )
    # b2: clip "e" lacks its V label (left out and counted)
    wh.write_batch(
        "cluster_assignments", "b2", pl.concat([_rows("b2", ["d", "e"], "A", [3, 4]), _rows("b2", ["d"], "V", [13])])
    )
    return wh


def test_label_matrix_rows_ids_and_positions(wh):
    index, labels, columns, excluded = label_matrix(wh, ["A", "V"])
    assert columns == ["A", "V"] and excluded == 1 and labels.dtype == np.uint8
    assert index.batches == ["b1", "b2"] and index.counts == [3, 1] and len(index) == 4
    assert labels.tolist() == [[0, 10], [1, 11], [2, 12], [3, 13]]  # a, b, c, d
    assert index.ids_at([3, 0, 2]).to_list() == ["d", "a", "c"]  # in the order asked
    assert index.rows_of(["c", "zzz", "d", "a"]).tolist() == [2, 3, 0]  # unknown ids dropped
    with pytest.raises(IndexError):
        index.ids_at([4])
    assert index.scratch.is_dir()  # the spilled ids, removed with the index
    index.close()
    assert not index.scratch.exists()
    with pytest.raises(ValueError, match="no assignments for clustering"):
        label_matrix(wh, ["A", "nope"])


def test_ids_come_from_the_version_the_labels_were_built_from(wh):
    index, labels, _, _ = label_matrix(wh, ["A", "V"])
    # b1 is rewritten after the matrix was built: the index still reads the old version
    wh.write_batch("cluster_assignments", "b1", pl.concat([_rows("b1", ["q"], "A", [0]), _rows("b1", ["q"], "V", [0])]))
    assert index.ids_at([0, 1, 2]).to_list() == ["a", "b", "c"]
    assert label_matrix(wh, ["A", "V"])[0].counts == [1, 1]


def test_wide_labels_use_two_bytes(wh):
    wh.write_batch(
        "cluster_assignments", "b3", pl.concat([_rows("b3", ["f"], "A", [300]), _rows("b3", ["f"], "V", [1])])
    )
    _, labels, _, _ = label_matrix(wh, ["A", "V"])
    assert labels.dtype == np.uint16 and labels[-1].tolist() == [300, 1]


def test_a_nonfinite_embedding_gets_no_assignment(tmp_path):
    """A NaN vector is left out (the clip stays out of the pool); its neighbours are assigned."""
    import numpy as np
    import polars as pl

    from acav_assets.core.clustering import KMeansConfig, fit_kmeans
    from acav_assets.core.stages.assignments import assignment_rows
    from acav_assets.core.warehouse.tables import Warehouse

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    cl = fit_kmeans(x, "visual/t/a", KMeansConfig(k=3))
    x[5, 2] = np.nan
    wh = Warehouse(str(tmp_path / "wh"))
    wh.write_batch(
        "clip_embeddings",
        "b",
        pl.DataFrame(
            {
                "batch": "b",
                "clip_id": [f"c{i:02d}" for i in range(40)],
                "feature_space": "visual/t/a",
                "vector": pl.Series([list(map(float, v)) for v in x], dtype=pl.List(pl.Float32)),
            }
        ),
    )
    df = assignment_rows(wh, "b", [cl])
    assert df.height == 39 and "c05" not in set(df["clip_id"])
