"""Settings declared once: a core dataclass field that carries its own description.

Each stage's parameters are one frozen dataclass of the core (``SelectionParams``, ``ClipConfig``,
``KMeansConfig``, ...), and each field a user may set is declared with :func:`setting`: its default,
a one-line description and, where the values are a fixed set, the choices. The Dagster run config
(``acav_assets.defs.platform.settings``) and the ``acav`` command's options (``acav_assets.cli``)
are derived from these fields, so a setting is named, typed, defaulted and described in one place.
Validation stays in the dataclass (``__post_init__``), so every door refuses the same values with
the same message.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["Setting", "setting", "settings_of"]


def setting(default: Any = dataclasses.MISSING, doc: str = "", *, choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field with a description (and the values it may take) for the run config and
    the command line."""
    return dataclasses.field(default=default, metadata={"doc": doc, "choices": tuple(choices) if choices else None})


@dataclasses.dataclass(frozen=True)
class Setting:
    """One described field of a settings dataclass."""

    name: str
    type: Any  # the resolved annotation
    default: Any
    doc: str
    choices: tuple | None


def settings_of(cls: type, names: Sequence[str] | None = None) -> list[Setting]:
    """The described fields of the dataclass ``cls`` (those declared with :func:`setting`), in
    declaration order, or the ``names`` asked for (an error names a field that is not described)."""
    hints = typing.get_type_hints(cls)
    described = {
        f.name: Setting(f.name, hints[f.name], f.default, f.metadata["doc"], f.metadata.get("choices"))
        for f in dataclasses.fields(cls)
        if "doc" in f.metadata
    }
    if names is None:
        return list(described.values())
    missing = [n for n in names if n not in described]
    if missing:
        raise KeyError(f"{cls.__name__} has no described setting {missing}")
    return [described[n] for n in names]
