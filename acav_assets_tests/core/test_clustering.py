"""k-means with real faiss (CPU here): recovery, chunking, persistence through Delta, errors."""

from __future__ import annotations

from math import comb

import faiss
import numpy as np
import pytest

from acav_assets.core.clustering import Clustering, KMeansConfig, check_finite, fit_kmeans, use_gpu
from acav_assets.core.warehouse.tables import Warehouse


def adjusted_rand_index(a, b) -> float:
    """ARI from its definition (pair counting over the contingency table)."""
    a, b = np.asarray(a), np.asarray(b)
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1), np.int64)
    np.add.at(table, (ai, bi), 1)
    sum_cells = sum(comb(int(v), 2) for v in table.ravel())
    sum_a = sum(comb(int(v), 2) for v in table.sum(1))
    sum_b = sum(comb(int(v), 2) for v in table.sum(0))
    expected = sum_a * sum_b / comb(len(a), 2)
    return (sum_cells - expected) / (0.5 * (sum_a + sum_b) - expected)


def blobs(n=6000, k=12, d=24, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    truth = rng.integers(0, k, n)
    return (centres[truth] + rng.normal(size=(n, d)) * spread).astype(np.float32), truth


def test_planted_clusters_are_recovered():
    x, truth = blobs()
    cl = fit_kmeans(x, "visual/test/layer1", KMeansConfig(k=12, seed=1))
    labels, dist = cl.assign(x)
    assert adjusted_rand_index(truth, labels) > 0.99
    assert labels.dtype == np.int32 and dist.dtype == np.float32 and (dist >= 0).all()
    assert cl.params["device"] == "cpu" and cl.params["n_sample"] == 6000
    assert cl.clustering_id.startswith("visual/test/layer1@k12-")


def test_sample_cap_bounds_the_fit_and_faiss_does_not_subsample_again():
    x, truth = blobs(n=20_000)
    cl = fit_kmeans(x, "a", KMeansConfig(k=12, max_sample=3000))
    assert cl.params["n_sample"] == 3000 and cl.params["n_rows"] == 20_000
    assert adjusted_rand_index(truth, cl.assign(x)[0]) > 0.99


def test_chunked_assignment_equals_one_shot():
    x, _ = blobs(n=3001)
    cl = fit_kmeans(x, "a", KMeansConfig(k=12))
    one = cl.assign(x, chunk_size=1_000_000)
    for chunk in (1, 7, 1000):
        got = cl.assign(x, chunk_size=chunk)
        assert np.array_equal(got[0], one[0])
        assert np.allclose(got[1], one[1], atol=1e-5)
    # distance is the Euclidean distance to the chosen centroid
    ref = np.linalg.norm(cl.preprocess(x) - cl.centroids[one[0]], axis=1)  # as the centroids see the rows
    assert np.allclose(one[1], ref, atol=1e-3)


@pytest.mark.parametrize(
    "cfg", [KMeansConfig(k=8), KMeansConfig(k=8, normalize=True), KMeansConfig(k=8, whiten=True, pca_dim=10)]
)
def test_round_trip_through_a_delta_table_gives_identical_assignments(tmp_path, cfg):
    x, _ = blobs(n=2000, k=8)
    cl = fit_kmeans(x, "audio/vggish/conv4", cfg, fit_version="7")
    wh = Warehouse(str(tmp_path))
    assert wh.overwrite("cluster_centroids", cl.to_rows()) == 8  # one row per cluster
    table = wh.read("cluster_centroids")
    assert table["cluster"].to_list() == list(range(8)) or sorted(table["cluster"].to_list()) == list(range(8))
    back = Clustering.from_rows(table.sample(fraction=1.0, shuffle=True, seed=0).to_dicts())
    assert back.clustering_id == cl.clustering_id and back.params == cl.params
    a, b = cl.assign(x), back.assign(x)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_fit_is_deterministic_and_ids_follow_parameters():
    x, _ = blobs(n=2000)
    a = fit_kmeans(x, "a", KMeansConfig(k=12, seed=3))
    b = fit_kmeans(x, "a", KMeansConfig(k=12, seed=3))
    assert np.array_equal(a.centroids, b.centroids) and a.clustering_id == b.clustering_id
    assert fit_kmeans(x, "a", KMeansConfig(k=12, seed=4)).clustering_id != a.clustering_id
    assert fit_kmeans(x, "a", KMeansConfig(k=12, seed=3), fit_version="2").clustering_id != a.clustering_id


def test_whitening_undoes_a_dominant_noise_direction():
    # 4 clusters separated along dims 0-1; dim 2 carries huge noise that swamps L2 distance
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 4000)
    centres = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], np.float32)
    x = np.c_[centres[truth] + rng.normal(size=(4000, 2)) * 0.3, rng.normal(size=(4000, 1)) * 40].astype(np.float32)
    plain = fit_kmeans(x, "a", KMeansConfig(k=4, nredo=3, normalize=False))  # whitening alone, against raw rows
    white = fit_kmeans(x, "a", KMeansConfig(k=4, nredo=3, normalize=False, whiten=True))
    assert adjusted_rand_index(truth, white.assign(x)[0]) > 0.9
    assert adjusted_rand_index(truth, plain.assign(x)[0]) < 0.5


def test_cpu_path_with_faiss_gpu_installed():
    assert hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0
    if faiss.get_num_gpus() == 0:
        assert use_gpu(None) is False
        with pytest.raises(ValueError, match="no GPU"):
            use_gpu(True)


def test_clear_errors():
    x, _ = blobs(n=100, k=4, d=8)
    with pytest.raises(ValueError, match="100 clip.*fewer than k = 200"):
        fit_kmeans(x, "visual/x/y", KMeansConfig(k=200, max_sample=1000))
    bad = x.copy()
    bad[[3, 50]] = np.nan
    bad[77, 2] = np.inf
    with pytest.raises(ValueError, match=r"3 row\(s\) with NaN or inf.*\[3, 50, 77\]"):
        fit_kmeans(bad, "visual/x/y", KMeansConfig(k=4))
    cl = fit_kmeans(x, "visual/x/y", KMeansConfig(k=4))
    with pytest.raises(ValueError, match="dimension 5.*expects 8"):
        cl.assign(x[:, :5])
    with pytest.raises(ValueError, match="NaN or inf"):
        cl.assign(bad)
    with pytest.raises(ValueError, match="2-D"):
        fit_kmeans(x[0], "a", KMeansConfig(k=4))
    with pytest.raises(ValueError, match="k must be"):
        KMeansConfig(k=1)
    with pytest.raises(ValueError, match="pca_dim"):
        KMeansConfig(pca_dim=3)
    check_finite(x)  # no error on clean data


def test_clustering_ids_are_content_addressed():
    """Same data and settings: the same id; other embeddings under the same name and seed: a
    new id (their labels must never be mixed with the old ones)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8)).astype(np.float32)
    b = a + rng.normal(scale=0.5, size=a.shape).astype(np.float32)
    cfg = KMeansConfig(k=4, seed=1)
    assert fit_kmeans(a, "visual/x/y", cfg).clustering_id == fit_kmeans(a, "visual/x/y", cfg).clustering_id
    assert fit_kmeans(a, "visual/x/y", cfg).clustering_id != fit_kmeans(b, "visual/x/y", cfg).clustering_id
