"""Loading the synthetic market's YAML presets (``configs/market/*.yaml``) through :mod:`qlib_ext.config`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ...config import find_config, load_config, resolve_config

FAMILY = "market"
PRESETS = ("tiny", "default", "full")
#: optional sections, off when absent (so a preset without them builds the same bytes as before them)
OPTIONAL_KEYS = ("mechanisms",)


@lru_cache(maxsize=1)
def market_keys() -> tuple[str, ...]:
    """The generator's knobs: the top-level keys of the packaged ``tiny`` preset plus ``OPTIONAL_KEYS``."""
    from ...config import package_dir

    cfg, _ = resolve_config(FAMILY, package_dir() / FAMILY / "tiny.yaml")
    return tuple(dict.fromkeys([*cfg, *OPTIONAL_KEYS]))


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
    _validate_path(cfg, path)


def _validate_path(cfg: dict, path: str | Path) -> None:
    """The index path targets (``path:``) and the alpha calendar: keys present, dates increasing."""
    import math

    import pandas as pd

    pcfg = cfg.get("path")
    if pcfg:
        if "start" not in pcfg:
            raise ValueError(f"{path}: path.start (the path's origin date) is missing")
        prev = pd.Timestamp(pcfg["start"])
        for i, per in enumerate(pcfg.get("periods") or []):
            missing = [k for k in ("end", "csi300", "csi500", "csi1000") if k not in per]
            if missing:
                raise ValueError(f"{path}: path.periods[{i}] misses keys {missing}")
            end = pd.Timestamp(per["end"])
            if end <= prev:
                raise ValueError(f"{path}: path.periods[{i}].end {end.date()} must be after {prev.date()}")
            for b in ("csi300", "csi500", "csi1000"):
                v = float(per[b])
                if not math.isfinite(v) or v <= -1:
                    raise ValueError(f"{path}: path.periods[{i}].{b} = {per[b]} is not a return above -100%")
            prev = end
    cal = cfg["alpha"].get("calendar") if isinstance(cfg.get("alpha"), dict) else None
    if cal:
        dates = [pd.Timestamp(d) for d, _ in cal]
        if any(b <= a for a, b in zip(dates[:-1], dates[1:])):
            raise ValueError(f"{path}: alpha.calendar dates must increase")
        if any(not math.isfinite(float(m)) or float(m) < 0 for _, m in cal):
            raise ValueError(f"{path}: alpha.calendar multipliers must be finite and >= 0")
