"""One rebalance's optimizer inputs, aligned on one universe (plain numpy arrays, no Qlib).

Universe = stocks with a signal  U  benchmark members (b > 0)  U  current holdings (w0 > 0).
Holdings are included so a suspended or limit-locked position can be kept and its trade counted
in turnover.  Stocks in the universe without a signal get ``alpha_fill`` (default ``"min"``: the
cross-sectional minimum of the given signal, so the optimizer never buys an unknown stock on
purpose; it holds one only as far as the benchmark-tracking constraints force it).

Inputs that do not line up are errors, not silent fills: every input must be indexed by the same
instrument codes, and the share of the benchmark's members that ``alpha``, ``industry`` (a known
code) and ``exposures`` (a row) cover must reach ``min_overlap`` (default :data:`MIN_OVERLAP`;
the boundary passes); an input indexed by integers is named as such.  Above the threshold, the
members left out are filled (alpha ``alpha_fill``, industry its own bucket, exposures 0) and
counted in ``notes``.  Risk inputs (factor covariance, specific variances, infinite exposures) are
checked by :mod:`.checks` as they enter.  :func:`check_styles` (run by the optimizer) refuses a constrained style with
no finite exposure among the benchmark members: filling all of them with 0 would make the
constraint bind nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np
import pandas as pd

from .checks import check_exposures_finite, check_factor_cov, check_specific_var

AlphaFill = Union[str, float]
UNKNOWN_INDUSTRY = "__unknown__"
#: Default least share of the benchmark members each of alpha, industry and exposures must cover.
MIN_OVERLAP = 0.5


@dataclass
class OptimInput:
    """Arrays for one cross-section; every vector has length ``n = len(index)``.

    ``industry`` holds integer codes into ``industries``; ``exposures`` is (n, k) with column names
    ``factors``; masks are boolean.  ``w0`` sums to at most 1 (the rest is cash).
    """

    index: pd.Index
    alpha: np.ndarray
    benchmark: np.ndarray
    w0: np.ndarray
    industry: np.ndarray
    industries: list
    exposures: np.ndarray
    factors: list
    suspended: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    specific_var: np.ndarray | None = None
    factor_cov: np.ndarray | None = None
    risk_factors: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    exposure_missing: np.ndarray | None = None   # (n, k) True where the exposure was NaN/absent (then set to 0)

    @property
    def n(self) -> int:
        return len(self.index)

    @property
    def members(self) -> np.ndarray:
        """Benchmark membership mask (b > 0)."""
        return self.benchmark > 0

    @property
    def has_w0(self) -> bool:
        return bool(self.w0.sum() > 0)

    def exposure(self, factor: str) -> np.ndarray:
        """Column ``factor`` of the exposure matrix; KeyError names the missing factor."""
        try:
            return self.exposures[:, self.factors.index(factor)]
        except ValueError:
            raise KeyError(f"exposure {factor!r} not in the optimizer input (have {self.factors})") from None

    @classmethod
    def build(
        cls,
        alpha: pd.Series,
        benchmark: pd.Series,
        w0: pd.Series | None = None,
        industry: pd.Series | None = None,
        exposures: pd.DataFrame | None = None,
        suspended: pd.Series | None = None,
        limit_up: pd.Series | None = None,
        limit_down: pd.Series | None = None,
        specific_var: pd.Series | None = None,
        factor_cov: pd.DataFrame | None = None,
        alpha_fill: AlphaFill = "min",
        min_overlap: float = MIN_OVERLAP,
    ) -> OptimInput:
        """Align pandas inputs (indexed by instrument) on the universe; see the module docstring.

        NaN exposures become 0 (the mean of a z-scored exposure) and a missing industry becomes its
        own bucket ``__unknown__``; both are counted in ``notes``.  Benchmark weights are rescaled
        to sum to 1 (noted when they did not).  Negative weights raise ValueError naming stocks.
        ``min_overlap``: least share of the benchmark members that alpha, industry and exposures
        must cover (ValueError naming the input below it).
        """
        if not 0 <= min_overlap <= 1:
            raise ValueError(f"min_overlap must be in [0, 1], got {min_overlap}")
        alpha = _series(alpha, "alpha")
        infinite = alpha.index[np.isinf(alpha.to_numpy(dtype=float))]
        if len(infinite):
            raise ValueError(f"alpha: infinite signal for {len(infinite)} stocks, e.g. {list(infinite[:5])}")
        bench = _series(benchmark, "benchmark").fillna(0.0)
        held = _series(w0, "w0").fillna(0.0) if w0 is not None else pd.Series(dtype=float)
        for name, s in (("benchmark", bench), ("w0", held)):
            if (s < 0).any():
                raise ValueError(f"{name}: negative weights for {list(s.index[s < 0][:5])}")
        notes: list[str] = []
        index = alpha.dropna().index.union(bench.index[bench > 0]).union(held.index[held > 0])
        if len(index) == 0:
            raise ValueError("empty universe: no stock has a signal, a benchmark weight or a holding")
        a = alpha.reindex(index)
        missing = a.isna()
        if missing.any():
            a = a.fillna(_fill_value(alpha.dropna(), alpha_fill))
            notes.append(f"alpha filled ({alpha_fill!r}) for {int(missing.sum())} stocks without a signal")
        b = np.array(bench.reindex(index, fill_value=0.0), dtype=float)
        if b.sum() <= 0:
            raise ValueError("benchmark has no positive weight in the universe")
        members = bench.index[bench > 0]
        _check_overlap("alpha", alpha.index, members, min_overlap)
        if industry is not None:
            _check_overlap("industry", industry.index[industry.notna()], members, min_overlap)
        if exposures is not None:
            _check_overlap("exposures", exposures.index, members, min_overlap)
        if abs(b.sum() - 1.0) > 1e-6:
            notes.append(f"benchmark weights summed to {b.sum():.6f}; rescaled to 1")
        b = b / b.sum()
        w = np.array(held.reindex(index, fill_value=0.0), dtype=float)
        if w.sum() > 1 + 1e-6:
            raise ValueError(f"w0 sums to {w.sum():.6f} > 1")
        ind_codes, ind_names = _industry(industry, index, notes)
        X, factors, missing_x = _exposures(exposures, index, notes)
        spec = None
        if specific_var is not None:
            spec = check_specific_var(_series(specific_var, "specific_var"), index, notes)
        cov, risk_factors = None, []
        if factor_cov is not None:
            risk_factors = [str(f) for f in factor_cov.index]
            missing = [f for f in factor_cov.index if f not in factor_cov.columns]
            if missing:
                raise ValueError(f"factor_cov: rows {missing[:5]} have no column; give a factor x factor frame")
            cov = check_factor_cov(factor_cov.loc[factor_cov.index, factor_cov.index].to_numpy(float), risk_factors)
        return cls(
            index=index, alpha=np.array(a, dtype=float), benchmark=b, w0=w, industry=ind_codes,
            industries=ind_names, exposures=X, factors=factors, suspended=_mask(suspended, index),
            limit_up=_mask(limit_up, index), limit_down=_mask(limit_down, index),
            specific_var=spec, factor_cov=cov, risk_factors=risk_factors, notes=notes,
            exposure_missing=missing_x,
        )


def _series(s: pd.Series, name: str) -> pd.Series:
    if not isinstance(s, pd.Series):
        raise TypeError(f"{name}: expected a pandas Series indexed by instrument, got {type(s).__name__}")
    if not s.index.is_unique:
        raise ValueError(f"{name}: duplicate instruments {list(s.index[s.index.duplicated()][:5])}")
    return s.astype(float)


def _fill_value(alpha: pd.Series, how: AlphaFill) -> float:
    """Signal given to universe stocks without one: 'min', 'mean', 'zero' or a number."""
    if not isinstance(how, str):
        return float(how)
    if how == "zero" or alpha.empty:
        return 0.0
    if how in ("min", "mean"):
        return float(getattr(alpha, how)())
    raise ValueError(f"alpha_fill: unknown rule {how!r} (use 'min', 'mean', 'zero' or a number)")


def check_alpha_fill(how: AlphaFill) -> None:
    """ValueError unless ``how`` is 'min', 'mean', 'zero' or a finite number (checked before any data is read)."""
    if isinstance(how, bool) or not isinstance(how, (str, int, float, np.number)):
        raise ValueError(f"alpha_fill: {how!r} is not a rule; use 'min', 'mean', 'zero' or a number")
    if not isinstance(how, str) and not np.isfinite(float(how)):
        raise ValueError(f"alpha_fill: {how!r} is not a finite number")
    _fill_value(pd.Series([0.0]), how)


def _mask(s: pd.Series | None, index: pd.Index) -> np.ndarray:
    if s is None:
        return np.zeros(len(index), dtype=bool)
    return np.array(s.reindex(index).fillna(False).astype(bool), dtype=bool)  # own copy: pandas 3 views are read-only


def _industry(industry: pd.Series | None, index: pd.Index, notes: list) -> tuple[np.ndarray, list]:
    if industry is None:
        return np.zeros(len(index), dtype=np.int64), [UNKNOWN_INDUSTRY]
    ind = industry.reindex(index)
    if ind.isna().any():
        notes.append(f"industry unknown for {int(ind.isna().sum())} stocks (own bucket {UNKNOWN_INDUSTRY})")
    labels = ind.astype(object).where(ind.notna(), UNKNOWN_INDUSTRY).map(str)
    codes, names = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), list(names)


def _exposures(exposures: pd.DataFrame | None, index: pd.Index, notes: list
               ) -> tuple[np.ndarray, list, np.ndarray]:
    if exposures is None:
        return np.zeros((len(index), 0)), [], np.zeros((len(index), 0), dtype=bool)
    X = np.array(exposures.reindex(index), dtype=float)
    check_exposures_finite(X, index, [str(c) for c in exposures.columns])
    bad = np.isnan(X)
    if bad.any():
        cols = [str(c) for c, k in zip(exposures.columns, bad.sum(0)) if k]
        notes.append(f"NaN exposures set to 0 in {cols} ({int(bad.any(1).sum())} stocks)")
        X = np.where(bad, 0.0, X)
    return X, [str(c) for c in exposures.columns], bad


def isin(values: pd.Index, pool) -> np.ndarray:
    """``values.isin(pool)`` through a hash lookup: pandas 3's ``str`` Index.isin converts ``pool`` to
    Arrow scalars one by one (~40 ms for 5,000 codes, the largest cost of a rebalance's input)."""
    return pd.Index(pool).unique().get_indexer(pd.Index(values)) >= 0


def _examples(index: pd.Index, k: int = 3) -> list:
    return list(index[:k])


def _check_overlap(name: str, have: pd.Index, members: pd.Index, min_overlap: float) -> None:
    """ValueError naming ``name`` when it covers less than ``min_overlap`` of the benchmark members."""
    share = float(isin(members, have).mean()) if len(members) else 1.0
    if share >= min_overlap:
        return
    hint = "index every input by instrument code"
    if pd.api.types.is_integer_dtype(have) and not pd.api.types.is_integer_dtype(members):
        hint = f"{name} is indexed by integers (a reset_index?); {hint}"
    raise ValueError(f"{name}: covers {share:.1%} of the {len(members)} benchmark members "
                     f"(min_overlap {min_overlap:.0%}); {name} has {_examples(have)}, the benchmark has "
                     f"{_examples(members)}: {hint}")


def _constraint_styles(constraint) -> list[str]:
    """The exposure columns a constraint reads (its ``exposures_needed()``)."""
    return [str(s) for s in constraint.exposures_needed()]


def check_styles(inp: OptimInput, constraints) -> None:
    """ValueError naming the style and the constraint when no benchmark member has a finite exposure to it."""
    if inp.exposure_missing is None or not inp.factors:
        return
    members = inp.members
    for c in constraints:
        for style in _constraint_styles(c):
            if style not in inp.factors:
                continue  # the constraint itself names the missing column (KeyError)
            j = inp.factors.index(style)
            if inp.exposure_missing[members, j].all():
                raise ValueError(f"exposures: style {style!r} (constraint {c.name}) has no finite value among the "
                                 f"{int(members.sum())} benchmark members; filled with 0 it would bind nothing "
                                 "(give the exposures of this date, or drop the constraint)")
