"""Profiles: named lists of extractors, chosen by configuration.

- ``weightfree`` (offline, no weights at all; the demo and the tests use it): deterministic features at several
  scales per modality (:mod:`acav_assets.core.features.weightfree`);
- ``pretrained``: an R(2+1)D-18 video network (5 stages) and a VGGish-style audio CNN
  (5 layers) (:mod:`acav_assets.core.features.backbones`), with weights from a local file or the
  torch cache, or seeded random weights (with a warning) when none are configured;
- ``reference``: the official release's pair, SlowFast-R50 and VGGish, weights from files
  (``pytorchvideo``'s ``SLOWFAST_8x8_R50.pyth``, ``torchvggish``'s ``vggish-10086976.pth``);
- ``structure``: generic weight-free picture statistics (``visual/structure``), to join;
- ``packaged`` (joined with ``weightfree`` and ``structure``: the platform's default): real pretrained weights that ship inside installed packages, so semantic
  features work offline out of the box: ImageNet EfficientNet-Lite0 on frames and AudioSet
  YAMNet on sound (:mod:`acav_assets.core.features.packaged`);
- ``clip-clap`` / ``clip-ast``: CLIP on frames with CLAP or AST on sound, each loaded with
  ``transformers`` from a local ``save_pretrained`` folder given as the extractor option
  ``model`` (:mod:`acav_assets.core.features.transformers_encoders`).

This module is the one registry: it maps extractor names to their classes and imports the
extractor modules lazily (the networks import torchvision); they import only
:mod:`acav_assets.core.features.base`, never this module.
"""

from __future__ import annotations

import importlib

import torch

from acav_assets.core.features.base import Extractor, profile_feature_spaces, resolve_device

__all__ = [
    "DEFAULT_PROFILE",
    "EXTRACTORS",
    "PROFILES",
    "build_profile",
    "extractor_class",
    "profile_entries",
    "profile_feature_spaces",
]

#: Extractor name -> (module, class). The class's ``name`` attribute is the same name.
EXTRACTORS: dict[str, tuple[str, str]] = {
    "visual/pixels": ("acav_assets.core.features.weightfree", "PixelStats"),
    "audio/logmel": ("acav_assets.core.features.weightfree", "LogMelStats"),
    "visual/structure": ("acav_assets.core.features.structure", "StructureStats"),
    "visual/r2plus1d_18": ("acav_assets.core.features.backbones", "R2Plus1D"),
    "audio/vggish": ("acav_assets.core.features.backbones", "VGGish"),
    "visual/efficientnet_lite0": ("acav_assets.core.features.packaged", "EfficientNetLite0"),
    "audio/yamnet": ("acav_assets.core.features.packaged", "YAMNet"),
    "visual/slowfast_r50": ("acav_assets.core.features.backbones", "SlowFast"),
    "visual/clip": ("acav_assets.core.features.transformers_encoders", "CLIPImage"),
    "audio/ast": ("acav_assets.core.features.transformers_encoders", "AST"),
    "audio/clap": ("acav_assets.core.features.transformers_encoders", "CLAPAudio"),
}

#: The platform's default profile: the best measured on content we did not generate (docs/quality.md,
#: "Curation quality": the real-weights spaces carry the photographs' content, the weight-free
#: ones add cheap audio descriptors and generic picture statistics, and pair weighting drops
#: the pairs that carry nothing).
#: The demo and the tests use ``weightfree`` alone (``ACAV_PROFILE``).
DEFAULT_PROFILE = "packaged+weightfree+structure"

#: Named sets of extractors. Each entry: (extractor name, keyword arguments).
PROFILES: dict[str, list[tuple[str, dict]]] = {
    "weightfree": [("visual/pixels", {}), ("audio/logmel", {})],
    "pretrained": [("visual/r2plus1d_18", {}), ("audio/vggish", {})],
    # the reference's pair (weights from files: --extractor-options '{"visual/slowfast_r50": {"weights": ...}}')
    "reference": [("visual/slowfast_r50", {}), ("audio/vggish", {})],
    "packaged": [("visual/efficientnet_lite0", {}), ("audio/yamnet", {})],
    "structure": [("visual/structure", {})],  # generic weight-free picture statistics (join it: weightfree+structure)
    # need each model's folder: --extractor-options '{"visual/clip": {"model": "/models/clip"}, ...}'
    "clip-clap": [("visual/clip", {}), ("audio/clap", {})],
    "clip-ast": [("visual/clip", {}), ("audio/ast", {})],
}


def extractor_class(name: str) -> type[Extractor]:
    """The class registered under ``name`` (its module is imported on first use)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown extractor {name!r}: expected one of {sorted(EXTRACTORS)}")
    module, cls = EXTRACTORS[name]
    return getattr(importlib.import_module(module), cls)


def build_profile(
    profile: str, device: str | torch.device | None = None, options: dict[str, dict] | None = None
) -> list[Extractor]:
    """Instantiate a profile's extractors on ``device``; ``options`` overrides keyword arguments
    per extractor name (e.g. ``{"visual/r2plus1d_18": {"weights": "/models/r2p1d.pth"}}``)."""
    entries = profile_entries(profile)
    dev = resolve_device(device)
    options = options or {}
    unknown = set(options) - {n for n, _ in entries}
    if unknown:
        raise ValueError(f"options given for extractors not in profile {profile!r}: {sorted(unknown)}")
    extractors = [extractor_class(name)(device=dev, **{**kw, **options.get(name, {})}) for name, kw in entries]
    profile_feature_spaces(extractors)  # a space declared twice is an error here, not in a table
    return extractors


def profile_entries(profile: str) -> list[tuple[str, dict]]:
    """The (extractor, keyword arguments) of a profile; ``a+b`` joins profiles (e.g.
    ``packaged+weightfree``: every space of both, each extractor once)."""
    entries: dict[str, dict] = {}
    for part in profile.split("+"):
        if part not in PROFILES:
            raise ValueError(
                f"unknown extractor profile {part!r}: expected one of {sorted(PROFILES)} (or several joined with '+')"
            )
        for name, kw in PROFILES[part]:
            entries.setdefault(name, kw)
    return list(entries.items())
