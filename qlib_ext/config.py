"""The one preset loader: YAML configs of every family, found in one documented order.

Families are folders of ``<name>.yaml`` files: ``market`` (synthetic market), ``optimizer``
(constraint bounds), ``models`` and ``sweeps``.  A name is looked up, first hit wins, in

1. an explicit path (``my.yaml``, ``./x/y.yaml``): used as is;
2. ``./configs/<family>/<name>.yaml`` of the working directory            (origin ``cwd``);
3. ``<dir>/<family>/<name>.yaml`` for each dir of ``$QLIB_EXT_CONFIG_PATH``
   (``os.pathsep``-separated, in order)                                  (origin ``env``);
4. the packaged copy ``qlib_ext/configs/<family>/<name>.yaml``, i.e. the repo's top-level
   ``configs/`` shipped inside the wheel, read with :mod:`importlib.resources` (origin ``package``).

A file may start with ``base: <name or path>``: the base is loaded first (same family, same lookup;
a relative path is taken from the file's folder) and the file's keys are deep-merged over it
(mappings merge key by key, anything else replaces).  A cycle of bases is refused naming the chain;
with ``allowed``, a top-level key outside it is refused naming the file and the key.
``qlib-ext configs list|show`` prints what is found and from where.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

FAMILIES = ("market", "optimizer", "models", "sweeps", "pipeline")
ENV_VAR = "QLIB_EXT_CONFIG_PATH"
CWD_DIR = "configs"
ORIGINS = ("explicit", "cwd", "env", "package")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ConfigSource:
    """Where a config was found: its family, name, file and origin (explicit | cwd | env | package)."""

    family: str
    name: str
    path: Path
    origin: str


def _family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"unknown config family {family!r}: known {list(FAMILIES)}")
    return family


def package_dir() -> Path:
    """The packaged ``configs/`` folder (``qlib_ext/configs``, a symlink to ``configs/`` in a checkout)."""
    return Path(str(resources.files("qlib_ext").joinpath("configs")))


def search_dirs(family: str) -> list[tuple[str, Path]]:
    """The ``(origin, folder)`` pairs searched for a name of ``family``, in lookup order."""
    _family(family)
    dirs = [("cwd", Path.cwd() / CWD_DIR / family)]
    dirs += [("env", Path(d).expanduser() / family) for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    dirs.append(("package", package_dir() / family))
    return dirs


def _is_path(ref: str | Path) -> bool:
    text = str(ref)
    return isinstance(ref, Path) or text.endswith(_SUFFIXES) or "/" in text or os.sep in text


def _candidates(family: str, name: str) -> list[ConfigSource]:
    found = []
    for origin, folder in search_dirs(family):
        for suffix in _SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                found.append(ConfigSource(family, name, path, origin))
                break
    return found


def locate(family: str, name_or_path: str | Path, relative_to: Path | None = None) -> ConfigSource:
    """The :class:`ConfigSource` of a name or path (lookup order in the module docstring)."""
    _family(family)
    ref = name_or_path
    if _is_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute() and relative_to is not None and (relative_to / path).is_file():
            path = relative_to / path
        if path.is_file():
            return ConfigSource(family, path.stem, path, "explicit")
        if "/" in str(ref) or os.sep in str(ref):
            raise FileNotFoundError(f"{family} config {path} does not exist")
        ref = path.stem  # `figure10.yaml`: a name with its suffix
    hits = _candidates(family, str(ref))
    if hits:
        return hits[0]
    known = sorted({s.name for s in list_configs(family)})
    places = ", ".join(str(d) for _, d in search_dirs(family))
    raise FileNotFoundError(f"{family} preset {str(name_or_path)!r} not found as a file nor in {places}; "
                            f"known: {known}")


def find_config(family: str, name: str | Path) -> Path:
    """The file a name (or path) of ``family`` resolves to; ``FileNotFoundError`` listing the known names."""
    return locate(family, name).path


def list_configs(family: str | None = None, shadowed: bool = False) -> list[ConfigSource]:
    """Every config found, sorted by family and name; the winner of each name only unless ``shadowed``."""
    out = []
    for fam in [_family(family)] if family else FAMILIES:
        seen: set[str] = set()
        files: set[Path] = set()  # in a checkout ./configs and the packaged copy are one folder
        for origin, folder in search_dirs(fam):
            if not folder.is_dir():
                continue
            for path in sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES and p.is_file()):
                if (path.stem in seen and not shadowed) or path.resolve() in files:
                    continue
                seen.add(path.stem)
                files.add(path.resolve())
                out.append(ConfigSource(fam, path.stem, path, origin))
    order = {o: i for i, o in enumerate(ORIGINS)}
    return sorted(out, key=lambda s: (FAMILIES.index(s.family), s.name, order[s.origin]))


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``over`` on top of ``base``: mappings merge key by key, any other value replaces (copies, no aliasing)."""
    out = copy.deepcopy(dict(base))
    for key, val in over.items():
        if isinstance(val, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def _check_keys(keys: Iterable[str], allowed: Iterable[str] | None, where: str) -> None:
    if allowed is None:
        return
    allowed = list(allowed)
    unknown = sorted(set(keys) - {"base", *allowed})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (allowed: base, {', '.join(allowed)})")


def resolve_config(family: str, name_or_path: str | Path, allowed: Iterable[str] | None = None,
                   _chain: tuple[Path, ...] = (), _relative_to: Path | None = None) -> tuple[dict, list[ConfigSource]]:
    """The merged config and its ``base`` chain of sources (the base first, the named file last)."""
    allowed = None if allowed is None else tuple(allowed)
    src = locate(family, name_or_path, relative_to=_relative_to)
    path = src.path.resolve()
    if path in _chain:
        raise ValueError(f"{src.path}: circular 'base' chain {[str(p) for p in (*_chain, path)]}")
    try:
        raw = yaml.safe_load(src.path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{src.path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{src.path}: expected a mapping of keys, got {type(raw).__name__}")
    _check_keys(raw, allowed, str(src.path))
    base = raw.pop("base", None)
    if base is None:
        return raw, [src]
    cfg, chain = resolve_config(family, base, allowed, (*_chain, path), path.parent)
    return deep_merge(cfg, raw), [*chain, src]


def load_config(family: str, name_or_path: str | Path, allowed: Iterable[str] | None = None,
                **overrides: Any) -> dict:
    """A config of ``family`` with its ``base`` chain resolved and ``overrides`` deep-merged on top.

    ``allowed``: the top-level keys a file (and the overrides) may set; others raise ``ValueError``
    naming the file and the key.
    """
    allowed = None if allowed is None else tuple(allowed)
    cfg, _ = resolve_config(family, name_or_path, allowed)
    _check_keys(overrides, allowed, f"overrides of {family} config {str(name_or_path)!r}")
    return deep_merge(cfg, overrides)
