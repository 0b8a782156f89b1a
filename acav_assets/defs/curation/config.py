"""Run config of the selection, derived from ``SelectionParams`` (each setting declared there once).

The settings of ``SELECTION_KEYS`` left unset continue with the ones the warehouse's current
subset was made with, whoever launches the run (the CLI, the UI, automation); a value given that
differs re-selects fully, and the run says so. The defaults are ``SelectionParams``'s."""

import dagster as dg

from acav_assets.core.stages.curation import SELECTION_KEYS, SelectionParams
from acav_assets.defs.platform.settings import config_class, config_fields

__all__ = ["SelectionConfig"]


class _SelectionSettings(dg.Config):
    def given(self) -> list[str]:
        """The selection settings this run gives (the others are held or default)."""
        return [k for k in SELECTION_KEYS if getattr(self, k) is not None]

    def resolved(self, held: dict | None = None) -> dict:
        """Every selection setting as ``SelectionParams`` takes it: given here, else ``held``
        (the warehouse's, :func:`held_settings`), else the default."""
        defaults = SelectionParams()
        out = {}
        for k in SELECTION_KEYS:
            v = getattr(self, k)
            if v is None:
                v = (held or {}).get(k, getattr(defaults, k))
            out[k] = list(v) if k == "dedup_spaces" else v
        return out

    def version_settings(self, held: dict | None = None) -> dict:
        """What the selection's data version depends on: the effective settings and the rest of
        this config (``mode`` is left out by :mod:`acav_assets.defs.platform.versions`)."""
        return {**self.model_dump(), **self.resolved(held)}

    def params(self, held: dict | None = None) -> SelectionParams:
        """The core settings; a value that cannot work raises ValueError naming it."""
        r = self.resolved(held)
        return SelectionParams(
            **{**r, "dedup_spaces": tuple(r["dedup_spaces"])}, restarts=self.restarts, mode=self.mode
        )

    def check(self, held: dict | None = None) -> None:
        """The given settings checked against ``held`` (the warehouse's, when known), else the
        defaults; :meth:`params` checks again in the step, with the warehouse's settings."""
        self.params(held)


SelectionConfig = config_class(
    "SelectionConfig",
    _SelectionSettings,
    __doc__,
    config_fields(SelectionParams, held=SELECTION_KEYS),
)
