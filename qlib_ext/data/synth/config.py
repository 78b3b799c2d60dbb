"""Loading the synthetic market's YAML presets (``configs/market/*.yaml``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

#: ``configs/`` of the source tree (the package is installed in editable/development mode).
CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"
PRESETS = ("tiny", "default", "full")


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def preset_path(preset: str | Path) -> Path:
    """A preset name (``tiny``) or a path to a YAML file."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise FileNotFoundError(f"market config {path} does not exist")
        return path
    path = CONFIG_DIR / "market" / f"{preset}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONFIG_DIR / "market").glob("*.yaml"))
        raise FileNotFoundError(f"unknown market preset {preset!r}; known: {known} (in {path.parent})")
    return path


def load_market_config(preset: str | Path = "tiny", **overrides: Any) -> dict:
    """Resolve a preset (following ``base:``) and apply keyword overrides (e.g. ``seed=7``)."""
    path = preset_path(preset)
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    base = cfg.pop("base", None)
    if base is not None:
        cfg = _merge(load_market_config(base), cfg)
    cfg = _merge(cfg, {k: v for k, v in overrides.items() if v is not None})
    _validate(cfg, path)
    return cfg


def validate_market_config(cfg: dict, source: str | Path = "market config") -> dict:
    """Check a resolved config; errors name the source and the key. Returns the config."""
    _validate(cfg, source)
    return cfg


def _validate(cfg: dict, path: str | Path) -> None:
    required = ("seed", "start", "end", "n_stocks", "index_bands", "boards", "returns", "alpha")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    import pandas as pd

    if pd.Timestamp(cfg["start"]) >= pd.Timestamp(cfg["end"]):
        raise ValueError(f"{path}: start {cfg['start']} must be before end {cfg['end']}")
    bands = sum(cfg["index_bands"].values())
    if bands > cfg["n_stocks"] * cfg.get("listed_at_start", 1.0):
        raise ValueError(
            f"{path}: index bands need {bands} stocks but only "
            f"{int(cfg['n_stocks'] * cfg.get('listed_at_start', 1.0))} are listed at the start"
        )
    if abs(sum(cfg["boards"].values()) - 1) > 1e-6:
        raise ValueError(f"{path}: boards shares must sum to 1")
