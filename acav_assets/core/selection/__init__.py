"""The selection: the MI objective over clustering pairs and the batch-greedy selector
(:mod:`.greedy`), with its compiled inner loop (:mod:`.kernel`), and the label-free pair
weighting that keeps uninformative feature spaces from drowning the others (:mod:`.weighting`)."""

from acav_assets.core.selection.greedy import (
    DEFAULT_PAIRING,
    PAIRINGS,
    Selection,
    marginal_effects,
    mean_mutual_information,
    mutual_information,
    resolve_pairs,
    select_subset,
)
from acav_assets.core.selection.weighting import RULES as WEIGHTING_RULES
from acav_assets.core.selection.weighting import PairWeighting, pair_weights

__all__ = [
    "DEFAULT_PAIRING",
    "PAIRINGS",
    "Selection",
    "marginal_effects",
    "mean_mutual_information",
    "mutual_information",
    "resolve_pairs",
    "select_subset",
    "PairWeighting",
    "pair_weights",
    "WEIGHTING_RULES",
]
