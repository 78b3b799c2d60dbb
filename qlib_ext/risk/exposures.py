"""Style exposures from raw descriptors (Barra CNE5 recipe, price-volume styles only).

For each day, over the stocks listed with a market cap and an industry (the cross-section):

* **size** = winsorised standardised ``ln(total mcap)`` (CNE5 LNCAP);
* **beta** = BETA; **momentum** = RSTR;
* **residual_volatility** = ``0.74 DASTD + 0.16 CMRA + 0.10 HSIGMA`` (each descriptor standardised
  first), orthogonalised to beta and size (CNE5, to remove their collinearity);
* **nonlinear_size** = standardised size cubed, orthogonalised to size, winsorised, standardised (CNE5 NLSIZE);
* **liquidity** = ``0.35 STOM + 0.35 STOQ + 0.30 STOA``, orthogonalised to size (CNE5).

"Standardised" = cap-weighted mean 0, equal-weighted std 1; "winsorised" = clipped once at +-3 std
and re-standardised (:mod:`.xsection`).  Orthogonalisation is a cap-weighted regression with an
intercept.  A stock missing a descriptor (young listing) is filled by the industry + size regression
(:func:`.xsection.impute`, regression weights sqrt(mcap)); an orthogonalised style is re-orthogonalised
after the clip, so the final exposure is exactly orthogonal (under cap weights) to what it was
orthogonalised to, and exactly mean 0 / std 1 (it may then exceed +-3 slightly).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .config import STYLES, RiskConfig
from .xsection import combine, impute, orthogonalize, standardize, winsorize


def cross_section(mcap: np.ndarray, industry: np.ndarray) -> np.ndarray:
    """The daily cross-section: listed (positive mcap) with an industry code."""
    return np.isfinite(mcap) & (mcap > 0) & (industry >= 0)


def usable_days(desc: dict[str, np.ndarray], universe: np.ndarray, min_coverage: float) -> np.ndarray:
    """Days on which every raw descriptor covers ``min_coverage`` of the cross-section (T,) bool.

    Before the windows fill up (the start of a dataset) imputation would invent most exposures,
    so those days are left out of the store.
    """
    n = universe.sum(axis=1)
    ok = n > 0
    for x in desc.values():
        cov = (np.isfinite(x) & universe).sum(axis=1) / np.maximum(n, 1)
        ok &= cov >= min_coverage
    return ok


def style_exposures(desc: dict[str, np.ndarray], mcap: np.ndarray, industry: np.ndarray,
                    cfg: RiskConfig, tick: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Final style exposures (float64 panels, NaN outside the cross-section or on unusable days).

    ``desc``: raw descriptors from :func:`.descriptors.compute_descriptors`; ``industry``: integer
    codes 0..K-1 (-1 = none); ``tick(1)`` is called after each style.
    """
    def done(x: np.ndarray) -> np.ndarray:
        if tick is not None:
            tick(1)
        return x

    universe = cross_section(mcap, industry)
    cap = np.where(universe, mcap, np.nan).astype(np.float64)
    sqrt_cap = np.sqrt(cap)
    lim = cfg.winsor_std

    def win(x: np.ndarray) -> np.ndarray:
        return winsorize(np.where(universe, x, np.nan), cap, lim)

    size = done(win(np.log(cap)))

    def fill(x: np.ndarray) -> np.ndarray:
        return win(impute(x, size, industry, sqrt_cap, universe))

    def final_orth(x: np.ndarray, against: list[np.ndarray]) -> np.ndarray:
        return standardize(orthogonalize(x, against, cap), cap)

    beta = done(fill(win(desc["beta"])))
    momentum = done(fill(win(desc["rstr"])))
    resvol = combine([win(desc["dastd"]), win(desc["cmra"]), win(desc["hsigma"])], cfg.resvol_weights)
    resvol = done(final_orth(fill(orthogonalize(resvol, [beta, size], cap)), [beta, size]))
    nlsize = done(final_orth(win(orthogonalize(size**3, [size], cap)), [size]))
    liquidity = combine([win(desc["stom"]), win(desc["stoq"]), win(desc["stoa"])], cfg.liquidity_weights)
    liquidity = done(final_orth(fill(orthogonalize(liquidity, [size], cap)), [size]))

    out = {"size": size, "beta": beta, "momentum": momentum, "residual_volatility": resvol,
           "nonlinear_size": nlsize, "liquidity": liquidity}
    usable = usable_days(desc, universe, cfg.min_coverage)
    for k in out:
        out[k][~usable] = np.nan
    return {k: out[k] for k in STYLES}
