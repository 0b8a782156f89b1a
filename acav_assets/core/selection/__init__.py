"""The selection: the MI objective over clustering pairs and the batch-greedy selector
(:mod:`.greedy`), with its compiled inner loop (:mod:`.kernel`)."""

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

__all__ = ["DEFAULT_PAIRING", "PAIRINGS", "Selection", "marginal_effects", "mean_mutual_information",
           "mutual_information", "resolve_pairs", "select_subset"]
