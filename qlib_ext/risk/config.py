"""Parameters of the risk model: Barra CNE5 descriptor windows, half-lives and weights, and factor names.

Every number has its source beside it.  Sources: MSCI Barra, *Barra China Equity Model (CNE5)
Descriptor Details* (July 2012: windows, half-lives, lags, descriptor weights) and *CNE5 Empirical
Notes* (Orr, Mashtaler, Nagy, July 2012), and the *USE4 Methodology Notes* (Menchero, Orr, Wang,
2011) for the conventions CNE5 shares with USE4 (standardisation, regression weights, the industry
constraint, missing-exposure imputation).  Values marked "ours" are not published and were chosen here.  All windows are in trading days; a half-life ``h`` means weights
``0.5 ** (k / h)`` for the observation ``k`` days back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Style factors in CNE5's order (the fundamental styles need data a price-volume dataset lacks).
STYLES: tuple[str, ...] = ("size", "beta", "momentum", "residual_volatility", "nonlinear_size", "liquidity")
#: The intercept factor every stock has exposure 1 to (Barra's "country" factor).
COUNTRY = "country"
#: Prefix of industry factor names: ``ind_<code>`` with the dataset's integer industry code.
INDUSTRY_PREFIX = "ind_"


def industry_factor(code: int | float) -> str:
    """Factor name of an industry code, e.g. 110000 -> ``ind_110000``."""
    return f"{INDUSTRY_PREFIX}{int(code)}"


@dataclass(frozen=True)
class RiskConfig:
    """Windows, half-lives, descriptor weights and estimation knobs; plain keywords, YAML-friendly."""

    # Beta / HSIGMA (CNE5: 252-day window, half-life 63, regression on the cap-weighted market).
    beta_window: int = 252
    beta_half_life: float = 63
    beta_min_obs: int = 63            # ours: a quarter of the window (Barra does not publish one)
    # Momentum RSTR (CNE5: 504-day window, half-life 126, lag 21, sum of weighted log returns).
    rstr_window: int = 504
    rstr_half_life: float = 126
    rstr_lag: int = 21
    rstr_min_obs: int = 126           # ours
    # Residual volatility = 0.74 DASTD + 0.16 CMRA + 0.10 HSIGMA (CNE5), orthogonal to beta and size.
    dastd_window: int = 252
    dastd_half_life: float = 42
    dastd_min_obs: int = 63           # ours
    cmra_months: int = 12             # CNE5: 12 months of 21 trading days
    cmra_month_days: int = 21
    cmra_min_months: int = 3          # ours
    resvol_weights: tuple[float, float, float] = (0.74, 0.16, 0.10)
    # Liquidity = 0.35 STOM + 0.35 STOQ + 0.30 STOA (CNE5), orthogonal to size.
    stom_days: int = 21
    stoq_months: int = 3
    stoa_months: int = 12
    liquidity_min_obs: int = 10       # ours: trading days inside the 21-day month
    liquidity_weights: tuple[float, float, float] = (0.35, 0.35, 0.30)
    # Cross-section: winsorise at +-3 equal-weighted std after a first standardisation (ours, common).
    winsor_std: float = 3.0
    # A date enters the store once every raw style descriptor covers this share of listed stocks.
    min_coverage: float = 0.5
    # Factor covariance: zero-mean EWMA, volatilities and correlations with separate half-lives.
    cov_vol_half_life: float = 90
    cov_corr_half_life: float = 480
    cov_min_obs: int = 63
    # Specific risk: zero-mean EWMA of squared specific returns, per stock.
    specific_half_life: float = 90
    specific_min_obs: int = 21

    def as_dict(self) -> dict:
        """Plain dict (for the store's meta.json)."""
        return asdict(self)
