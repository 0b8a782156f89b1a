"""Command-line options derived from the run config classes, so that a setting is declared once
(on its core dataclass, :mod:`acav_assets.core.settings`) and the ``acav`` options carry the same
name, type, choices and description as the run config the UI shows."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Mapping, Sequence

__all__ = ["add_config_options", "given"]


def _base(annotation):
    """``int | None`` -> ``int``; ``list[str] | None`` -> ``list[str]``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def add_config_options(
    parser: argparse.ArgumentParser,
    config: type,
    names: Sequence[str],
    *,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Add an option per field ``names`` of the run config class ``config`` (``--budget`` for
    ``budget``; ``flags`` gives other spellings, the first one shown). Every option defaults to
    ``None``, "not given": the run config then leaves the field out. Returns field -> flag."""
    shown = {}
    for name in names:
        field = config.model_fields[name]
        spelled = list((flags or {}).get(name, ())) or ["--" + name.replace("_", "-")]
        kind = _base(field.annotation)
        kwargs: dict = {"default": None, "dest": name, "help": (field.description or "").replace("%", "%%")}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is list:
            kwargs.update(type=_words, metavar="A,B,...")
        else:
            kwargs["type"] = kind
        choices = (field.json_schema_extra or {}).get("choices") if isinstance(field.json_schema_extra, dict) else None
        if choices and typing.get_origin(kind) is list:  # argparse would check the whole list against them
            kwargs["help"] += f" (of {', '.join(map(str, choices))})"
        elif choices:
            kwargs["choices"] = choices
        parser.add_argument(*spelled, **kwargs)
        shown[name] = spelled[0]
    return shown


def given(args: argparse.Namespace, names: Sequence[str]) -> dict:
    """The fields ``names`` the command line gave (the others stay unset)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
