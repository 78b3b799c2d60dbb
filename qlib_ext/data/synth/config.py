"""Loading the synthetic market's YAML presets (``configs/market/*.yaml``) through :mod:`qlib_ext.config`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ...config import find_config, load_config, resolve_config

FAMILY = "market"
PRESETS = ("tiny", "default", "full")


@lru_cache(maxsize=1)
def market_keys() -> tuple[str, ...]:
    """The generator's knobs: the top-level keys of the packaged ``tiny`` preset, which lists every one."""
    from ...config import package_dir

    cfg, _ = resolve_config(FAMILY, package_dir() / FAMILY / "tiny.yaml")
    return tuple(cfg)


def load_market_config(preset: str | Path = "tiny", **overrides: Any) -> dict:
    """Resolve a preset (following ``base:``) and apply keyword overrides (e.g. ``seed=7``; None = keep)."""
    cfg = load_config(FAMILY, preset, allowed=market_keys(), **{k: v for k, v in overrides.items() if v is not None})
    _validate(cfg, find_config(FAMILY, preset))
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
