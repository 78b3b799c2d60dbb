"""Checks of the risk-model inputs where they enter the optimizer (SPEC section 10, issue 19).

Rules (each refused input is a ``ValueError`` naming the input, the factor or stock, and the fix):

* **factor covariance**: every entry finite; symmetric within :data:`SYM_RTOL` x its largest
  entry (a rounding asymmetry is averaged away, a larger one is refused naming the pair);
  positive semidefinite within :data:`PSD_RTOL`: the smallest eigenvalue must be at least
  ``-PSD_RTOL x`` the largest.  A matrix further from PSD is **refused**, naming the most negative
  eigenvalue and the factors its eigenvector loads on; it is not projected.  Why refuse: the risk
  store's estimator (``qlib_ext.risk.covariance``: a correlation of an EWMA second moment, scaled
  by volatilities) is PSD by construction and its build refuses anything else, so a materially
  non-PSD matrix is a hand-made, mixed-date or corrupted one; projecting it would silently change
  the risk the optimizer minimises along a direction nobody chose (with a variance of -5 the
  optimizer otherwise *maximises* that factor's risk).  Eigenvalues within the tolerance are the
  rounding of a PSD matrix and are used as they are.
* **specific variances**: present values must be finite and > 0 (negative, zero or infinite ones
  are refused naming the stocks).  Missing ones (NaN, or a stock without a row) are filled with the
  median of the present ones, but only while they are at most :data:`MAX_SPECIFIC_FILL` of the
  universe; the fill is counted in the input's ``notes``.  All missing, or more than that share, is
  an error.
* **exposures**: ``+-inf`` is refused naming the stock and factor (NaN is a missing value, filled
  with 0 by ``OptimInput.build`` and counted).

:func:`check_risk_input` re-checks an assembled ``OptimInput`` (the optimizer runs it on every
solve, so an input built by hand cannot slip past the checks to a plain "optimal").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Largest |C - C'| accepted as rounding, relative to max |C| (then C is replaced by (C + C') / 2).
SYM_RTOL = 1e-8
#: Smallest eigenvalue accepted, as a share of the largest: lambda_min >= -PSD_RTOL * lambda_max.
PSD_RTOL = 1e-8
#: Largest share of the universe whose missing specific variance may be filled with the median.
MAX_SPECIFIC_FILL = 0.5

_FIX_COV = "give a finite, symmetric, positive semidefinite factor covariance (e.g. rebuild the risk store)"


def _pairs(names: Sequence[str], ii: np.ndarray, jj: np.ndarray, k: int = 3) -> list:
    return [(names[i], names[j]) for i, j in zip(ii[:k], jj[:k])]


def check_factor_cov(cov: np.ndarray, names: Sequence[str], name: str = "factor_cov") -> np.ndarray:
    """The covariance as a symmetric float array, or ValueError (see the module docstring)."""
    C = np.array(cov, dtype=float)
    names = [str(f) for f in names]
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] != len(names):
        raise ValueError(f"{name}: shape {C.shape} is not a square matrix over the {len(names)} factors {names[:5]}")
    bad = ~np.isfinite(C)
    if bad.any():
        ii, jj = np.nonzero(bad)
        raise ValueError(f"{name}: {int(bad.sum())} non-finite entries, first at {_pairs(names, ii, jj)} "
                         f"(values {[float(C[i, j]) for i, j in zip(ii[:3], jj[:3])]}); {_FIX_COV}")
    if C.size == 0:
        return C
    scale = float(np.abs(C).max())
    asym = np.abs(C - C.T)
    if asym.max() > SYM_RTOL * max(scale, np.finfo(float).tiny):
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise ValueError(f"{name}: not symmetric: [{names[i]!r}, {names[j]!r}] = {C[i, j]:.6g} but "
                         f"[{names[j]!r}, {names[i]!r}] = {C[j, i]:.6g} (tolerance {SYM_RTOL:g} x max |entry|); "
                         f"{_FIX_COV}")
    C = (C + C.T) / 2
    diag = np.diag(C)
    if (diag < 0).any():
        neg = np.flatnonzero(diag < 0)
        raise ValueError(f"{name}: negative variance for {[names[i] for i in neg[:5]]} "
                         f"({[float(diag[i]) for i in neg[:5]]}); {_FIX_COV}")
    vals, vecs = np.linalg.eigh(C)
    top = max(float(vals[-1]), 0.0)
    if vals[0] < -PSD_RTOL * top or (top == 0.0 and vals[0] < 0):
        load = np.argsort(-np.abs(vecs[:, 0]))[:3]
        raise ValueError(f"{name}: not positive semidefinite: most negative eigenvalue {vals[0]:.6g} "
                         f"(largest {top:.6g}; tolerance {PSD_RTOL:g} x largest), its eigenvector loads on "
                         f"{[names[i] for i in load]}; {_FIX_COV}. No projection is made: a non-PSD "
                         "covariance would make the optimizer seek the risk it should avoid")
    return C


def check_specific_var(spec: pd.Series, index: pd.Index, notes: list, name: str = "specific_var") -> np.ndarray:
    """Specific variances on ``index``: present ones finite and > 0, missing ones filled (a minority, noted)."""
    s = spec.reindex(index)
    v = s.to_numpy(dtype=float)
    bad = ~np.isnan(v) & ~(np.isfinite(v) & (v > 0))
    if bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(f"{name}: {int(bad.sum())} stocks with a variance that is not finite and > 0, e.g. "
                         f"{[(index[i], float(v[i])) for i in idx[:5]]}; a variance must be positive "
                         "(give the squared specific risk of the store)")
    missing = np.isnan(v)
    k, n = int(missing.sum()), len(v)
    if k == 0:
        return v
    if k == n:
        raise ValueError(f"{name}: missing for all {n} stocks of the universe (e.g. {list(index[:3])}); "
                         "the tracking-risk term needs them (give the specific risk of this date)")
    if k > MAX_SPECIFIC_FILL * n:
        raise ValueError(f"{name}: missing for {k} of the {n} stocks ({k / n:.1%} > {MAX_SPECIFIC_FILL:.0%}), "
                         f"e.g. {list(index[missing][:3])}; too few to fill with the median "
                         "(give the specific risk of this date, or index it by the same codes)")
    fill = float(np.median(v[~missing]))
    notes.append(f"specific_var filled with the median ({fill:.3g}) for {k} stocks")
    return np.where(missing, fill, v)


def check_exposures_finite(X: np.ndarray, index: pd.Index, factors: Sequence[str], name: str = "exposures") -> None:
    """ValueError naming stock and factor where an exposure is +-inf (NaN is a missing value, handled elsewhere)."""
    inf = np.isinf(X)
    if inf.any():
        ii, jj = np.nonzero(inf)
        where = [(index[i], str(factors[j]), float(X[i, j])) for i, j in zip(ii[:5], jj[:5])]
        raise ValueError(f"{name}: {int(inf.sum())} infinite values, e.g. {where}; give finite exposures "
                         "(or NaN for a missing one)")


def check_risk_input(inp, risk_aversion: float = 0.0) -> None:
    """Re-check an assembled ``OptimInput``: finite alpha and exposures; with a risk term, the covariance
    and the specific variances (finite, > 0, no NaN left) as above."""
    a = np.asarray(inp.alpha, dtype=float)
    if not np.isfinite(a).all():
        i = np.flatnonzero(~np.isfinite(a))
        raise ValueError(f"alpha: non-finite values for {list(inp.index[i[:5]])} in the optimizer input")
    check_exposures_finite(np.asarray(inp.exposures, dtype=float), inp.index, inp.factors)
    if not np.isfinite(inp.exposures).all():
        j = np.flatnonzero(~np.isfinite(inp.exposures).all(0))
        raise ValueError(f"exposures: NaN left in {[inp.factors[k] for k in j]} of the optimizer input "
                         "(build it with OptimInput.build, which fills and counts them)")
    if risk_aversion <= 0:
        return
    if inp.factor_cov is None or inp.specific_var is None:
        raise ValueError("risk_aversion > 0 needs factor_cov and specific_var in the optimizer input")
    check_factor_cov(inp.factor_cov, inp.risk_factors)
    spec = np.asarray(inp.specific_var, dtype=float)
    if not (np.isfinite(spec) & (spec > 0)).all():
        i = np.flatnonzero(~(np.isfinite(spec) & (spec > 0)))
        raise ValueError(f"specific_var: not finite and > 0 for {[(inp.index[k], float(spec[k])) for k in i[:5]]} "
                         "in the optimizer input (build it with OptimInput.build, which checks and fills it)")
