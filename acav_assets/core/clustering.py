"""k-means per feature space with faiss: fit on a bounded sample, assign with frozen centroids.

A :class:`Clustering` is a value: an id, the centroids, and the preprocessing the embeddings
need before distances are taken (optional L2 normalisation, optional PCA whitening). Fitting
uses at most ``max_sample`` rows, drawn with a seed, and tells faiss not to subsample again
(faiss alone keeps 256 points per centroid). Assignment runs in chunks, so any number of
embeddings can be labelled in bounded memory, and a newly ingested batch is labelled with the
same frozen centroids as every earlier one.

faiss runs on the GPU when ``faiss.get_num_gpus() > 0`` and on the CPU otherwise; the results
are the same kind of value either way.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import faiss
import numpy as np

from acav_assets.core.settings import setting

__all__ = [
    "KMeansConfig",
    "Clustering",
    "auto_k",
    "auto_nredo",
    "fit_kmeans",
    "check_finite",
    "sample_indices",
    "use_gpu",
]

_FINITE_CHUNK = 1 << 16
_INIT = {
    "kmeans++": faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS,
    "afk-mc2": faiss.ClusteringInitMethod_AFK_MC2,
    "random": faiss.ClusteringInitMethod_RANDOM,
}


@dataclass(frozen=True)
class KMeansConfig:
    """Parameters of one k-means fit (the reference: k = 32)."""

    k: int = 32
    niter: int = setting(25, "k-means iterations")
    nredo: int = 1
    seed: int = setting(0, "seed of the sample and of k-means")
    init: str = "kmeans++"  # "kmeans++", "afk-mc2" (faster k-means++ approximation) or "random" (faiss's old default)
    max_sample: int = setting(200_000, "clips per feature space used to fit")
    normalize: bool = setting(True, "L2-normalise embeddings before clustering (benchmarks/clustering_fit.py)")
    whiten: bool = setting(False, "PCA-whiten embeddings (fitted on the sample) before clustering")
    pca_dim: int | None = None  # keep this many principal components when whitening
    gpu: bool | None = None  # None: use a GPU when faiss sees one

    def __post_init__(self):
        if self.k < 2:
            raise ValueError(f"k must be at least 2, got {self.k}")
        if self.niter < 1 or self.nredo < 1:
            raise ValueError("niter and nredo must be positive")
        if self.max_sample < self.k:
            raise ValueError(f"max_sample ({self.max_sample}) must be at least k ({self.k})")
        if self.init not in _INIT:
            raise ValueError(f"init must be one of {sorted(_INIT)}, got {self.init!r}")
        if self.pca_dim is not None and (self.pca_dim < 1 or not self.whiten):
            raise ValueError("pca_dim needs whiten=True and must be positive")


def use_gpu(flag: bool | None) -> bool:
    """Whether faiss work should run on a GPU (``None``: when faiss sees one)."""
    n = faiss.get_num_gpus()
    if flag is None:
        return n > 0
    if flag and n == 0:
        raise ValueError("gpu=True was asked for, but faiss sees no GPU")
    return bool(flag)


def check_finite(x: np.ndarray, what: str = "embeddings") -> None:
    """Raise a ValueError naming the rows with NaN or inf (checked in chunks: bounded memory)."""
    bad: list[int] = []
    n_bad = 0
    for s in range(0, x.shape[0], _FINITE_CHUNK):
        rows = np.flatnonzero(~np.isfinite(x[s : s + _FINITE_CHUNK]).all(axis=1)) + s
        n_bad += rows.size
        bad.extend(rows[: max(0, 10 - len(bad))].tolist())
    if n_bad:
        raise ValueError(f"{what} has {n_bad} row(s) with NaN or inf values, e.g. rows {bad}")


def sample_indices(n: int, cap: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``cap`` rows out of ``n``, drawn without replacement."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def _as_matrix(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows × dimensions), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{what} must be floating point, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass(frozen=True)
class Clustering:
    """A fitted k-means clustering of one feature space, with its preprocessing."""

    clustering_id: str
    feature_space: str
    centroids: np.ndarray  # (k, d_out) float32
    dim: int  # input dimension
    normalize: bool = False
    mean: np.ndarray | None = None  # (dim,) float32, when whitening
    projection: np.ndarray | None = None  # (dim, d_out) float32, when whitening
    params: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def preprocess(self, x: np.ndarray) -> np.ndarray:
        """Rows as the centroids see them: normalised and/or whitened, float32."""
        x = _as_matrix(x, "embeddings")
        if x.shape[1] != self.dim:
            raise ValueError(
                f"embeddings have dimension {x.shape[1]}, but clustering "
                f"{self.clustering_id} of {self.feature_space} expects {self.dim}"
            )
        if self.normalize:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        if self.projection is not None:
            x = (x - self.mean) @ self.projection
        return np.ascontiguousarray(x, dtype=np.float32)

    def assign(
        self, x: np.ndarray, *, chunk_size: int = 65_536, gpu: bool | None = None, check: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroid of each row: ``(cluster int32, Euclidean distance float32)``.

        Works through ``x`` in chunks of ``chunk_size`` rows, so memory stays bounded
        whatever the number of rows (``x`` may be a memory map).
        """
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
        n = x.shape[0]
        labels = np.empty(n, np.int32)
        dist = np.empty(n, np.float32)
        index = self._index(gpu)
        for s in range(0, n, chunk_size):
            d2, i = index.search(self.preprocess(x[s : s + chunk_size]), 1)
            if check:
                # faiss leaves rows with NaN/inf unassigned (-1) or at a non-finite distance:
                # verify just those rows, instead of a separate pass over all the data
                flagged = np.flatnonzero((i[:, 0] < 0) | ~np.isfinite(d2[:, 0]))
                if flagged.size:
                    check_finite(x, f"embeddings of {self.feature_space}")  # error path: exact rows
                    raise ValueError(
                        f"embeddings of {self.feature_space} are too large for float32 "
                        f"distances, e.g. rows {(s + flagged[:10]).tolist()}"
                    )
            labels[s : s + chunk_size] = i[:, 0]
            dist[s : s + chunk_size] = np.sqrt(np.maximum(d2[:, 0], 0))
        return labels, dist

    def _index(self, gpu: bool | None):
        index = faiss.IndexFlatL2(self.centroids.shape[1])
        index.add(np.ascontiguousarray(self.centroids, dtype=np.float32))
        if use_gpu(gpu):
            index = faiss.index_cpu_to_all_gpus(index)
        return index

    # --- persistence: the rows of the ``cluster_centroids`` table ------------------------------

    def to_rows(self) -> list[dict]:
        """One row per cluster (the table contract: clustering_id, feature_space, cluster,
        centroid), plus the clustering's facts. The preprocessing (mean, projection) is stored
        once, on the cluster-0 row, not k times."""
        common = {
            "clustering_id": self.clustering_id,
            "feature_space": self.feature_space,
            "k": self.k,
            "dim": self.dim,
            "normalize": self.normalize,
            "params": json.dumps(self.params, sort_keys=True),
        }
        rows = []
        for c in range(self.k):
            first = c == 0
            rows.append(
                {
                    **common,
                    "cluster": c,
                    "centroid": self.centroids[c].astype(np.float32).tolist(),
                    "mean": self.mean.tolist() if first and self.mean is not None else None,
                    "projection": self.projection.ravel().tolist() if first and self.projection is not None else None,
                }
            )
        return rows

    @classmethod
    def from_rows(cls, rows: list[dict]) -> Clustering:
        """Rebuild one clustering from its rows (any order)."""
        if not rows:
            raise ValueError("no rows for a clustering")
        rows = sorted(rows, key=lambda r: r["cluster"])
        ids = {r["clustering_id"] for r in rows}
        if len(ids) != 1:
            raise ValueError(f"rows of several clusterings given together: {sorted(ids)}")
        r0 = rows[0]
        if [r["cluster"] for r in rows] != list(range(int(r0["k"]))):
            raise ValueError(
                f"clustering {r0['clustering_id']} has rows for clusters "
                f"{[r['cluster'] for r in rows][:10]}..., expected 0..{int(r0['k']) - 1}"
            )
        centroids = np.asarray([r["centroid"] for r in rows], dtype=np.float32)
        mean = None if r0.get("mean") is None else np.asarray(r0["mean"], dtype=np.float32)
        proj = r0.get("projection")
        projection = (
            None if proj is None else np.asarray(proj, dtype=np.float32).reshape(int(r0["dim"]), centroids.shape[1])
        )
        return cls(
            r0["clustering_id"],
            r0["feature_space"],
            centroids,
            int(r0["dim"]),
            bool(r0["normalize"]),
            mean,
            projection,
            json.loads(r0["params"]),
        )


def clustering_id(feature_space: str, config: KMeansConfig, fit_version: str, content: str = "") -> str:
    """``<feature space>@k<k>-<hash>``: readable and unique. The hash covers the parameters, the
    fit version and ``content``, a digest of the fitted centroids (and whitening): new
    embeddings under the same name and seed give new centroids, hence a new id, so labels of
    two fits are never mixed; a refit that reproduces the same centroids keeps the id."""
    payload = json.dumps(
        {"fs": feature_space, "cfg": asdict(config), "fit": fit_version, "content": content}, sort_keys=True
    )
    digest = hashlib.blake2b(payload.encode(), digest_size=5).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9_./-]", "_", feature_space)
    return f"{safe}@k{config.k}-{digest}"


def _whitening(x: np.ndarray, pca_dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64)
    xc = x.astype(np.float64) - mean
    cov = xc.T @ xc / max(1, x.shape[0] - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    keep = order[: pca_dim or x.shape[1]]
    scale = 1.0 / np.sqrt(np.maximum(evals[keep], 1e-8 * max(evals.max(), 1e-30)))
    return mean.astype(np.float32), (evecs[:, keep] * scale).astype(np.float32)


def fit_kmeans(
    x: np.ndarray,
    feature_space: str,
    config: KMeansConfig = KMeansConfig(),
    *,
    fit_version: str = "1",
    sample: Iterable[int] | None = None,
) -> Clustering:
    """Fit k-means on (a sample of) ``x``, rows × dimensions.

    At most ``config.max_sample`` rows are used (a seeded sample; ``sample`` gives the rows
    explicitly). Raises ValueError for too few rows, NaN/inf rows (named), or a bad shape.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"embeddings of {feature_space} must be a 2-D array (rows × dimensions), got shape {x.shape}")
    n = x.shape[0]
    if n < config.k:
        raise ValueError(f"feature space {feature_space} has {n} clip(s), fewer than k = {config.k} clusters")
    rows = (
        np.asarray(list(sample), dtype=np.int64)
        if sample is not None
        else sample_indices(n, config.max_sample, config.seed)
    )
    xs = _as_matrix(x[rows] if rows.size != n else x, f"embeddings of {feature_space}")
    check_finite(xs, f"embeddings of {feature_space}")
    if xs.shape[0] < config.k:
        raise ValueError(f"the sample of {feature_space} has {xs.shape[0]} rows, fewer than k = {config.k}")
    dim = xs.shape[1]
    pre = Clustering("", feature_space, np.zeros((1, dim), np.float32), dim, config.normalize)
    xs = pre.preprocess(xs)
    mean = projection = None
    if config.whiten:
        mean, projection = _whitening(xs, config.pca_dim)
        xs = np.ascontiguousarray((xs - mean) @ projection, dtype=np.float32)
    gpu = use_gpu(config.gpu)
    km = faiss.Kmeans(
        xs.shape[1],
        config.k,
        niter=config.niter,
        nredo=config.nredo,
        seed=config.seed,
        max_points_per_centroid=int(math.ceil(xs.shape[0] / config.k)) + 1,  # we sampled already
        min_points_per_centroid=1,
        init_method=_INIT[config.init],
        gpu=gpu,
        verbose=False,
    )
    obj = km.train(xs)
    params = {
        **asdict(config),
        "fit_version": fit_version,
        "n_rows": int(n),
        "n_sample": int(xs.shape[0]),
        "objective": float(obj),
        "device": "gpu" if gpu else "cpu",
    }
    centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
    digest = hashlib.blake2b(digest_size=8)
    for part in (centroids, mean, projection):
        if part is not None:
            digest.update(np.ascontiguousarray(part, dtype=np.float32).tobytes())
    return Clustering(
        clustering_id(feature_space, config, fit_version, digest.hexdigest()),
        feature_space,
        centroids,
        dim,
        config.normalize,
        mean,
        projection,
        params,
    )


def auto_k(n: int, cap: int = 32) -> int:
    """Clusters for ``n`` clips when k is not fixed: about sqrt(n / 3), between 2 and ``cap``
    (the reference's 32 from ~3,000 clips up; fewer on small pools, where 32 clusters of a
    few clips each make the MI estimates noise: measured in docs/quality.md, the demo table)."""
    return int(min(cap, max(2, round(math.sqrt(n / 3)))))


def auto_nredo(n: int, dim: int) -> int:
    """k-means restarts (best inertia kept) when not fixed: 10 for small fits (rows x dims <= 5M),
    3 up to 50M, 1 above. On the 200-video demo one run lands in poor local minima (cluster
    purity 0.54-0.85 on some layers); ten runs reach 0.87-1.0 (measured)."""
    size = n * dim
    return 10 if size <= 5_000_000 else 3 if size <= 50_000_000 else 1
