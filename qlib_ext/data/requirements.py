"""Which daily fields each use of a dataset needs, which the dataset lacks, and the command that adds each.

The one source of truth for field requirements: ``qlib-ext data check --require``, the job's
preflight, the handlers' and the risk build's "missing field" errors all read :data:`USES` and
:func:`missing_fields`.  Uses:

* ``qlib``: what any Qlib stock dataset has (adjusted OHLC, volume, ``factor``);
* ``handlers``: the price-volume and K-line features (``PriceVolume``, ``DailyKline``) and the
  ``Neutralize`` exposures (industry, ln market cap);
* ``label``: the vwap forward-return label;
* ``strategy``: the index-enhancement backtest (deal price, trading state, industry bands) and one
  benchmark weight field;
* ``risk``: ``qlib-ext risk build``;
* ``minute``: the minute factors (1-minute bars).

:func:`missing_fields` lists directory entries only (no bin is opened), so it takes well under a
second per thousand stocks.  Index instruments listed with the stocks (``SH000300``, ``SH000001``)
are not counted as stocks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..schema import WEIGHT_FIELDS
from .codes import is_index

#: The minimum any stock dataset needs.
CORE_FIELDS = ("open", "high", "low", "close", "volume", "factor")
#: Pseudo-field: a benchmark weight field, any of :data:`~qlib_ext.schema.WEIGHT_FIELDS`.
ANY_WEIGHT = "|".join(WEIGHT_FIELDS)
#: Pseudo-field: 1-minute bars (``features/<stock>/close.1min.bin`` and ``calendars/1min.txt``).
MINUTE_BARS = "1min bars"
_CORE = {f: "adjusted prices and volume" for f in CORE_FIELDS[:5]} | {"factor": "raw price = $close / $factor"}
#: use -> {field: what the use reads it for}.
USES: dict[str, dict[str, str]] = {
    "qlib": dict(_CORE),
    "handlers": {**{f: "price-volume / K-line features" for f in ("open", "high", "low", "close", "volume")},
                 "vwap": "K-line vwap feature", "turnover": "turn_10d, turn_20d features",
                 "mcap": "size feature, Neutralize size exposure", "industry": "Neutralize industry dummies"},
    "label": {"vwap": "the vwap forward-return label"},
    "strategy": {**_CORE, "vwap": "deal price", "paused": "trading state", "up_limit": "limit-up buys refused",
                 "down_limit": "limit-down sells refused", "industry": "industry bands",
                 ANY_WEIGHT: "benchmark weights"},
    "risk": {"change": "daily returns", "mcap": "size, regression weights", "turnover": "liquidity",
             "industry": "industry factors"},
    "minute": {**_CORE, MINUTE_BARS: "minute factors"},
}
#: use -> its day fields (the pseudo-fields of a benchmark weight and of minute bars left out).
REQUIREMENTS: dict[str, tuple[str, ...]] = {u: tuple(f for f in fs if f not in (ANY_WEIGHT, MINUTE_BARS))
                                         for u, fs in USES.items()}
#: How missing day fields are added to an existing dataset.
IMPORT_HINT = "qlib-ext data import --source <tushare-like files> --augment {root}"
_AUGMENT = "qlib-ext data import --source <dir with {files}> --augment {root}"
#: field -> the command that adds it ({root} = the dataset); fields not listed use :data:`IMPORT_HINT`.
FIXES: dict[str, str] = {
    **{f: _AUGMENT.replace("{files}", "daily (with amount)") for f in ("vwap", "amount")},
    **{f: _AUGMENT.replace("{files}", "daily, adj_factor") for f in ("factor", "change", "paused", "up_limit",
                                                                     "down_limit")},
    **{f: _AUGMENT.replace("{files}", "daily, daily_basic (or shares)")
       for f in ("turnover", "mcap", "float_mcap", "total_shares", "float_shares")},
    "industry": _AUGMENT.replace("{files}", "daily, industry"),
    ANY_WEIGHT: _AUGMENT.replace("{files}", "daily, index_weight and/or index_member"),
    **{f: "qlib-ext data import --source <tushare-like files> --out <new dir> (the dataset has no prices to "
          "augment)" for f in ("open", "high", "low", "close", "volume")},
    MINUTE_BARS: "qlib-ext data import --source <dir with daily and minute_* files> --out <new dir> "
                 "(augment mode does not add minute bars)",
}
CASE_FIX = ("cd {features} && for d in *; do l=$(echo \"$d\" | tr A-Z a-z); [ \"$d\" = \"$l\" ] || mv \"$d\" \"$l\"; done "
            "(and the same for upper-case *.bin file names)")
CASE_FIELD = "features/ names in lower case"


def fix_for(field: str, root: str | Path) -> str:
    """The command that adds ``field`` to the dataset at ``root``."""
    if field.startswith("mf_"):
        return f"qlib-ext factors minute --data {root}"
    return FIXES.get(field, IMPORT_HINT).format(root=root)


@dataclass(frozen=True)
class MissingField:
    """A field some stocks lack: how many of the dataset's stocks, who needs it, and the command that adds it."""

    field: str
    uses: tuple[str, ...]
    purpose: str
    stocks_missing: int
    stocks_total: int
    fix: str

    @property
    def everywhere(self) -> bool:
        """True when no stock has the field."""
        return self.stocks_missing >= self.stocks_total

    def __str__(self) -> str:
        return (f"{self.field} ({self.purpose}; needed by {', '.join(self.uses)}): missing for {self.stocks_missing} "
                f"of {self.stocks_total} stocks; add it with `{self.fix}`")


def feature_dirs(root: str | Path) -> dict[str, Path]:
    """``features/`` sub-folders by lower-case name (Qlib reads ``features/<symbol lower>/``)."""
    base = Path(root) / "features"
    if not base.is_dir():
        return {}
    return {e.name.lower(): Path(e.path) for e in os.scandir(base) if e.is_dir()}


def case_problem(root: str | Path, dirs: dict[str, Path] | None = None, sample: int = 50) -> str | None:
    """One line naming upper-case feature folders or ``.bin`` names (which Qlib on Linux never finds), with the fix."""
    dirs = feature_dirs(root) if dirs is None else dirs
    upper = sorted((p for p in dirs.values() if p.name != p.name.lower()), key=lambda p: p.name)
    files = [f for p in list(dirs.values())[:sample] for f in p.glob("*.bin") if f.name != f.name.lower()]
    if not upper and not files:
        return None
    what = []
    if upper:
        what.append(f"{len(upper)} of {len(dirs)} features/ folders are upper case (e.g. features/{upper[0].name}/)")
    if files:
        what.append(f"bin names are upper case (e.g. {files[0].parent.name}/{files[0].name})")
    return (f"{' and '.join(what)}: Qlib on Linux reads features/<symbol lower>/<field lower>.<freq>.bin and finds "
            f"nothing; rename them to lower case: {CASE_FIX.format(features=Path(root) / 'features')}")


def stock_symbols(root: str | Path, market: str = "all") -> list[str]:
    """The stocks of ``instruments/<market>.txt`` (index instruments left out), sorted."""
    path = Path(root) / "instruments" / f"{market.lower()}.txt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing instrument file for market {market!r}")
    names = pd.read_csv(path, sep="\t", header=None, usecols=[0], dtype=str)[0].dropna().unique()
    return sorted(s for s in names if not is_index(s))


def field_counts(root: str | Path, stocks: Sequence[str], dirs: dict[str, Path] | None = None
                 ) -> tuple[dict[str, int], int]:
    """(stocks having each ``<field>.day.bin`` plus :data:`MINUTE_BARS`, any case; stocks with a folder)."""
    dirs = feature_dirs(root) if dirs is None else dirs
    counts: dict[str, int] = {}
    with_dir = 0
    for s in stocks:
        folder = dirs.get(s.lower())
        if folder is None:
            continue
        with_dir += 1
        names = {e.name.lower() for e in os.scandir(folder)}
        for n in names:
            if n.endswith(".day.bin"):
                f = n[: -len(".day.bin")]
                counts[f] = counts.get(f, 0) + 1
        if "close.1min.bin" in names:
            counts[MINUTE_BARS] = counts.get(MINUTE_BARS, 0) + 1
    return counts, with_dir


def missing_fields(data_dir: str | Path, uses: Iterable[str] = tuple(USES), fields: dict[str, str] | None = None,
                   market: str = "all") -> list[MissingField]:
    """The fields that ``uses`` (and ``fields``: extra field -> purpose) need and some stocks of ``market`` lack.

    One entry per field with the number of stocks lacking it and the command that adds it; an empty list
    when nothing is missing.  Upper-case feature folders or bin names (which Qlib on Linux never reads)
    add one entry, field :data:`CASE_FIELD`, with the rename command; fields are counted in any case.
    """
    root = Path(data_dir).expanduser()
    uses = list(uses)
    unknown = sorted(set(uses) - set(USES))
    if unknown:
        raise ValueError(f"uses: unknown {unknown}; known {sorted(USES)}")
    need: dict[str, tuple[list[str], str]] = {}
    for use in uses:
        for f, why in USES[use].items():
            need.setdefault(f, ([], why))[0].append(use)
    for f, why in (fields or {}).items():
        need.setdefault(f, ([], why))[0].append("asked")
    stocks = stock_symbols(root, market)
    dirs = feature_dirs(root)
    counts, _ = field_counts(root, stocks, dirs)
    has_minute_cal = (root / "calendars" / "1min.txt").exists()
    out: list[MissingField] = []
    case = case_problem(root, dirs)
    if case:
        out.append(MissingField(CASE_FIELD, tuple(uses) or ("asked",), "Qlib reads lower-case names only",
                                len(stocks), len(stocks), case.split("rename them to lower case: ")[-1]))
    for f, (who, why) in need.items():
        if f == ANY_WEIGHT:
            have = max((counts.get(w, 0) for w in WEIGHT_FIELDS), default=0)
        elif f == MINUTE_BARS:
            have = counts.get(f, 0) if has_minute_cal else 0
        else:
            have = counts.get(f.lower(), 0)
        if have < len(stocks):
            out.append(MissingField(f, tuple(who), why, len(stocks) - have, len(stocks), fix_for(f, root)))
    return out


def guidance(data_dir: str | Path, uses: Iterable[str] = tuple(USES)) -> list[str]:
    """Per use: the fields it needs and, for each one missing, how many stocks lack it and the command that adds it."""
    root = Path(data_dir).expanduser()
    gone = {m.field: m for m in missing_fields(root, uses)}
    lines = []
    for use in uses:
        lack = [gone[f] for f in USES[use] if f in gone]
        head = f"{use} needs {', '.join(USES[use])}: "
        if not lack:
            lines.append(head + "all present")
            continue
        lines.append(head + f"{len(lack)} missing")
        lines += [f"    {m.field}: missing for {m.stocks_missing} of {m.stocks_total} stocks ({USES[use][m.field]}); "
                  f"add with `{m.fix}`" for m in lack]
    if CASE_FIELD in gone:
        lines.append(f"all uses: {gone[CASE_FIELD].fix}")
    return lines
