"""One-line descriptions of every column of every warehouse table (:data:`SCHEMAS`), for catalogues
such as the Dagster UI: what each value is, its unit or allowed values, and when it is null."""

from __future__ import annotations

__all__ = ["COLUMN_DESCRIPTIONS", "column_description"]

#: Table name -> {column name -> description}, in the table and column order of ``SCHEMAS``.
COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "videos": {
        "batch": "Batch key: the landing folder the file arrived in (the Delta partition)",
        "video_id": (
            "Content id: BLAKE2b hex of the file bytes (size + 64 sampled MiB above 1 GiB); "
            "'p…': path hash (content unread)"
        ),
        "path": "Path of the file relative to the landing root, e.g. batch_003/x.mp4",
        "status": (
            "ok/no_audio/no_video/too_short/too_long/too_large/corrupt/unreadable/outside_landing/"
            "timeout/duplicate/near_duplicate"
        ),
        "error": "What happened to the file, in words; empty when status is ok",
        "size_bytes": "File size in bytes; null when not learnt (stat failed, outside_landing, timeout, prober crash)",
        "duration_s": "Duration in seconds (video stream, else audio stream, else container); null if unknown",
        "video_start_s": (
            "Start time of the video stream in seconds (0 if unset); clip and fingerprint times count from it"
        ),
        "video_codec": "FFmpeg codec name of the first video stream (cover art ignored); null without one",
        "width": "Frame width in pixels as displayed (swapped for rotated videos); null if unknown",
        "height": "Frame height in pixels as displayed (swapped for rotated videos); null if unknown",
        "fps": "Average frame rate of the video stream (frames per second); null if unknown",
        "audio_codec": "FFmpeg codec name of the first audio stream; null without one",
        "sample_rate": "Audio sample rate in Hz of the first audio stream; null without one",
        "channels": "Number of audio channels of the first audio stream; null without one",
        "duplicate_of": (
            "duplicate: path of the first copy with the same content; near_duplicate: path of the kept copy; else null"
        ),
    },
    "clips": {
        "batch": "Batch key of the clip's video (the Delta partition)",
        "clip_id": "Clip id: <video_id>_<start ms>_<end ms>, stable for the same content and window",
        "video_id": "Content id of the source video (videos.video_id)",
        "path": "Path of the source video relative to the landing root",
        "start_s": "Window start in seconds from the video's first frame",
        "end_s": "Window end in seconds from the first frame: start + clip length (10 s), or a shorter video's end",
    },
    "clip_embeddings": {
        "batch": "Batch key of the clip (the Delta partition)",
        "clip_id": "Clip id (clips.clip_id)",
        "feature_space": "Embedding space: <modality>/<model>/<layer>, modality audio or visual",
        "vector": "The clip's float32 embedding in that space, as the extractor gave it (one fixed length per space)",
    },
    "clip_sync": {
        "batch": "Batch key of the clip (the Delta partition)",
        "clip_id": "Clip id (clips.clip_id)",
        "offset_s": "Estimated offset of the sound against the picture in seconds, > 0 when the sound comes late; "
        "null when unknown (no usable sound onsets or motion events)",
        "sync_score": "How sure the clip is in sync, in [0, 1] (1: a clear correlation peak at 0); null when unknown",
        "n_events": "Sound onsets that meet a motion event at the estimated offset: what the estimate rests on",
        "method": "Estimator that answered (onset-motion: sound onsets against picture motion, weight-free)",
        "reason": "Why the estimate is unknown ('' when it is known)",
        "out_of_sync": "The estimate is at least 0.2 s from 0 with a score under 0.4 (the selection leaves such clips "
        "out unless sync_filter is keep); null when unknown",
    },
    "cluster_centroids": {
        "clustering_id": (
            "Clustering id: <feature space>@k<k>-<hash of the fit settings, the sampled clips and the centroids>"
        ),
        "feature_space": "Embedding space the k-means was fitted on (clip_embeddings.feature_space)",
        "cluster": "Cluster index, 0 to k - 1",
        "centroid": "Centre of the cluster, in the space after L2 normalisation and whitening (if enabled)",
        "k": "Number of clusters of the clustering (same on each of its rows)",
        "dim": "Dimension of the input embeddings",
        "normalize": "Whether embeddings are L2-normalised before distances are taken",
        "params": "JSON: the k-means settings and fit facts (fit_version, n_rows, n_sample, objective, device)",
        "mean": "Whitening mean (dim values), on the cluster-0 row only; null there too without whitening",
        "projection": (
            "Whitening matrix (dim x centroid length, row-major), on the cluster-0 row only; null without whitening"
        ),
    },
    "cluster_assignments": {
        "batch": "Batch key of the clip (the Delta partition)",
        "clip_id": "Clip id; clips whose embedding has NaN or inf get no row",
        "clustering_id": "Clustering the label comes from (cluster_centroids.clustering_id)",
        "feature_space": "Embedding space of that clustering",
        "cluster": "Index of the nearest frozen centroid, 0 to k - 1",
        "distance": "Euclidean distance to that centroid, after the clustering's normalisation and whitening",
    },
    "curated_subset": {
        "clip_id": "Selected clip (clips.clip_id); one row per clip of the current subset",
        "video_id": "Content id of the clip's source video",
        "path": "Path of the source video relative to the landing root",
        "rank": "1-based order in which the clip was chosen; a warm start appends after the kept clips",
        "gain": "Increase of the objective (weighted mean MI, nats) when the clip was added; may be negative",
        "batch": "Batch key of the clip",
        "step": "0-based greedy step that chose the clip; a warm start continues the previous numbering",
        "start_s": "Window start in seconds from the video's first frame",
        "end_s": "Window end in seconds from the video's first frame",
        "selection_id": "Selection run that produced this subset (selection_runs.selection_id); same on every row",
        "clusters": "The clip's cluster in each clustering of its run, in selection_runs.clustering_ids order",
        "agreement": (
            "Label-free agreement of the clip's sound with its picture when the refinement ran (standardised "
            "neighbour and pseudo-class scores summed; higher agrees more); null without it"
        ),
        "chosen_by": "mi: chosen by the MI search; agreement: exchanged in by the agreement refinement",
    },
    "selection_runs": {
        "selection_id": (
            "Selection id: 16 hex of a hash of its parameters and pool (a warm start: of the run "
            "extended and new batches)"
        ),
        "created_at": "When the selection ran: ISO 8601 UTC time with microseconds",
        "params": (
            "JSON: the selection parameters, the cluster_assignments version read, and for a "
            "warm start the run extended"
        ),
        "clustering_ids": "Clusterings used, audio first then visual, each by feature space: the clusters order",
        "feature_spaces": "Feature space of each clustering, in clustering_ids order",
        "batches": "Batches whose clips were in the pool (a warm start: the extended run's and the new ones)",
        "pool_size": "Candidate clips after semantic dedup (a warm start: the extended run's pool plus new ones)",
        "size": "Clips in the resulting subset (a warm start: kept clips included)",
        "objective": "Final objective: weighted mean over clustering pairs of the subset's plug-in MI, in nats",
        "seed": "Random seed of the restart that was kept (the given seed plus the restart index)",
        "pair_weights": ("JSON list per clustering pair: a, b (feature spaces), score (pool's adjusted MI), z, weight"),
        "weighting": "Pair weighting rule (ami or plain), with a note when it fell back or reused earlier weights",
        "semantic_duplicates": "Clips semantic dedup left out of the pool, summed over the runs this one extends",
        "out_of_sync_excluded": (
            "Clips clip_sync flagged out of sync and the selection left out of the pool (sync_filter exclude), "
            "summed over the runs this one extends"
        ),
        "refinement": (
            "JSON: the refinement after the MI search: rule (agreement or none), the space pairs scored, "
            "the clips exchanged, and why it kept the MI selection when it did"
        ),
    },
    "semantic_duplicates": {
        "selection_id": "Selection whose pool dedup ran for (selection_runs.selection_id)",
        "clip_id": "Clip left out of the pool as a semantic duplicate",
        "duplicate_of": "Kept clip it repeats (same clusters everywhere; the earliest in batch order)",
        "cosine": "Lowest cosine similarity of the two clips' embeddings over the dedup feature spaces",
    },
    "selection_lineage": {
        "selection_id": "Selection the rows describe (the table holds the latest selection only)",
        "pair_index": "0-based index of the clustering pair, in the order of selection_runs.pair_weights",
        "clustering_a": "First clustering of the pair (the audio one in audio x visual pairs)",
        "clustering_b": "Second clustering of the pair",
        "feature_space_a": "Feature space of clustering_a",
        "feature_space_b": "Feature space of clustering_b",
        "cluster_a": "Cluster of clustering_a: the cell's row",
        "cluster_b": "Cluster of clustering_b: the cell's column",
        "pool_count": "Pool clips in the cell (only cells with at least one pool clip have a row)",
        "selected_count": "Subset clips in the cell",
        "mi_contribution": "The cell's term (N/n) log(N n / (a b)) of the subset's MI, in nats (0 for an empty cell)",
        "pair_mi": "Plug-in MI of the pair over the subset in nats, unweighted (sum of its cells' contributions)",
        "pair_score": "Adjusted MI of the pair over the pool (label-free); null when not measured",
        "pair_weight": "Weight of the pair in the objective (0: left out; 1 for all under the plain mean)",
    },
    "video_fingerprints": {
        "batch": "Batch key of the video (the Delta partition)",
        "video_id": "Content id of the video (videos.video_id)",
        "path": "Path of the video relative to the landing root",
        "key_times": "Picture sample times in seconds from the first frame: every 0.25 s over the centre 2 s",
        "key_hashes": "64-bit picture hash per sample (low DCT coefficients above their median), int64 bits",
        "key_vectors": "63 low DCT coefficients of a 32x32 grey thumbnail per sample, concatenated in sample order",
        "audio_hashes": (
            "64-bit sound hash per 1 s window, every 0.25 s from audio_start_s over the centre 6 s "
            "(default), int64 bits"
        ),
        "audio_sounding": "Per sound window: whether it sounds (false: silent, its hash means nothing)",
        "audio_start_s": "Start of sound window 0 in seconds from the first frame (0: whole file fingerprinted)",
    },
    "export_manifest": {
        "export_key": "Key of the export folder: 16 hex of a BLAKE2b hash of its resolved path",
        "export_dir": "Absolute path of the export folder",
        "clip_id": "Clip of the sample (its key in the shard)",
        "video_id": "Content id of the clip's source video",
        "batch": "Batch key of the clip",
        "source_path": "Path of the source video relative to the landing root",
        "start_s": "Window start in seconds from the video's first frame",
        "end_s": "Window end in seconds from the video's first frame",
        "rank": "The clip's rank in the subset it was exported from",
        "gain": "The clip's gain (nats) in the subset it was exported from",
        "selection_id": "Selection of the subset the sample was exported from (earlier for samples kept from before)",
        "subset_version": "curated_subset Delta version exported (or the ISO time it was exported as of)",
        "status": "ok, missing_media, decode_error or outside_landing (failed clips are retried next export)",
        "error": "Why the clip could not be exported; null when status is ok",
        "shard": "Tar shard holding the sample (clips-NNNNNN.tar in export_dir); null when not exported",
        "index_in_shard": "0-based position of the sample in its shard; null when not exported",
        "offset_bytes": "Byte offset of the sample's first tar header in its shard; null when not exported",
        "sample_bytes": "Bytes the sample takes in its shard; null when not exported or recovered from a shard",
        "n_frames": "Video frames in the exported clip (duration x fps); null when not exported",
        "fps": "Constant frame rate of the exported clip; null when not exported",
        "width": "Frame width in pixels of the exported clip, as displayed; null when not exported",
        "height": "Frame height in pixels of the exported clip, as displayed; null when not exported",
        "n_samples": "Audio samples per channel in the exported clip (0 without audio); null when not exported",
        "sample_rate": "Audio sample rate in Hz of the exported clip; null without audio or when not exported",
        "in_selection": "Whether the clip is in the subset this export was made from (false: an earlier one's)",
        "exported_at": "When the export run wrote or tried the sample: ISO 8601 UTC time, seconds",
    },
}


def column_description(table: str, column: str) -> str:
    """The description of ``table``'s ``column`` (KeyError for an unknown table or column)."""
    return COLUMN_DESCRIPTIONS[table][column]
