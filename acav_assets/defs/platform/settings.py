"""Run config classes derived from the core's settings dataclasses (:mod:`acav_assets.core.settings`).

A setting is declared once, on a core dataclass field, with its type, default, description and
choices. :func:`config_fields` turns the described fields into the fields of a ``dg.Config`` (the
UI's config editor shows the descriptions); :func:`core_kwargs` maps a config back to the core
dataclass. With ``held=True`` a field defaults to ``None``: "not given by this run", so the run
continues with the setting the warehouse holds (the selection's settings).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pydantic
from pydantic import Field

from acav_assets.core.settings import Setting, settings_of

__all__ = ["HELD_NOTE", "config_class", "config_fields", "core_kwargs"]

HELD_NOTE = " (unset: the warehouse's current setting, from the subset's last selection; else {})"


def _config_type(t: Any) -> Any:
    """A core annotation as the run config takes it (tuples are lists there)."""
    if typing.get_origin(t) is tuple:
        return list[typing.get_args(t)[0]]
    return t


def _description(s: Setting) -> str:
    return s.doc + (f" (one of {', '.join(map(str, s.choices))})" if s.choices else "")


def _extra(s: Setting) -> dict | None:
    """The choices, kept on the field for the command line's options."""
    return {"choices": list(s.choices)} if s.choices else None


def config_fields(
    core: type, names: Sequence[str] | None = None, *, prefix: str = "", held: Sequence[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """``dg.Config`` fields for the described settings ``names`` of the core dataclass ``core``,
    each named ``prefix + name``; those in ``held`` default to ``None`` (the warehouse's)."""
    out: dict[str, tuple[Any, Any]] = {}
    for s in settings_of(core, names):
        t = _config_type(s.type)
        default = list(s.default) if isinstance(s.default, tuple) else s.default
        if s.name in held:
            shown = ", ".join(map(str, default)) if isinstance(default, list) else default
            described = _description(s) + HELD_NOTE.format(shown)
            out[prefix + s.name] = (t | None, Field(default=None, description=described, json_schema_extra=_extra(s)))
        elif isinstance(default, list):
            factory = lambda d=default: list(d)  # noqa: E731
            out[prefix + s.name] = (t, Field(default_factory=factory, description=_description(s)))
        else:
            out[prefix + s.name] = (
                t,
                Field(default=default, description=_description(s), json_schema_extra=_extra(s)),
            )
    return out


def config_class(name: str, base: type[dg.Config], doc: str, *parts: dict[str, tuple[Any, Any]]) -> type[dg.Config]:
    """A ``dg.Config`` subclass of ``base`` (which holds the methods) with the fields of ``parts``."""
    fields = {k: v for part in parts for k, v in part.items()}
    cls = pydantic.create_model(name, __base__=base, __doc__=doc, __module__=base.__module__, **fields)
    return cls


def core_kwargs(config: dg.Config, core: type, names: Sequence[str] | None = None, *, prefix: str = "") -> dict:
    """The keyword arguments of the core dataclass ``core`` that ``config`` sets (fields named
    ``prefix + name``; lists back to tuples where the core takes a tuple)."""
    out = {}
    for s in settings_of(core, names):
        v = getattr(config, prefix + s.name)
        out[s.name] = tuple(v) if typing.get_origin(s.type) is tuple and v is not None else v
    return out
