"""Synthetic optimizer inputs shaped like A-share data, for tests and bench/optimizer.py.

Caps are log-normal and drift week to week; ``size`` = z-scored ln cap, ``nonlinear_size`` = z-scored
residual of size^3 on size (Barra CNE5's nonlinear size, simplified); other styles are persistent
Gaussian noise; 31 industries of uneven size (Shenwan L1 count); the benchmark is the cap-weighted
band of cap ranks ``bench_band`` (0.16-0.36 of 5,000 stocks ~ CSI 1000's ranks 800-1800); the
alpha is an AR(1) Gaussian score; a few stocks are suspended or locked at a limit each date.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import OptimInput

STYLES = ("size", "nonlinear_size", "beta", "momentum", "volatility", "liquidity")


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def nonlinear_size(size: np.ndarray) -> np.ndarray:
    """z-scored residual of ``size**3`` regressed on ``[1, size]`` (orthogonal to size)."""
    X = np.column_stack([np.ones_like(size), size])
    beta, *_ = np.linalg.lstsq(X, size**3, rcond=None)
    return zscore(size**3 - X @ beta)


class SyntheticMarket:
    """A reproducible sequence of cross-sections; ``cross_section(t, w0)`` is rebalance t."""

    def __init__(self, n: int = 800, n_industries: int = 31, bench_band: tuple = (0.16, 0.36),
                 seed: int = 0, p_suspended: float = 0.02, p_limit_up: float = 0.01,
                 p_limit_down: float = 0.01, alpha_rho: float = 0.8):
        self.n, self.seed, self.bench_band = n, seed, bench_band
        self.p = (p_suspended, p_limit_up, p_limit_down)
        self.alpha_rho = alpha_rho
        rng = np.random.default_rng(seed)
        self.index = pd.Index([f"S{i:05d}" for i in range(n)], name="instrument")
        shares = rng.dirichlet(np.full(n_industries, 2.0))
        self.industry = np.sort(rng.choice(n_industries, size=n, p=shares))
        rng.shuffle(self.industry)
        self.industry_codes = 110000 + 10000 * np.arange(n_industries)
        self._ln_cap0 = rng.normal(3.5, 1.0, n)
        self._styles0 = rng.normal(size=(n, len(STYLES) - 2))
        self._alpha0 = rng.normal(size=n)

    def _state(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ln cap, other styles and alpha at step t (random walks / AR(1) from the seed)."""
        ln_cap, styles, alpha = self._ln_cap0.copy(), self._styles0.copy(), self._alpha0.copy()
        rho = self.alpha_rho
        for k in range(t):
            rng = np.random.default_rng([self.seed, k + 1])
            ln_cap += rng.normal(0, 0.04, self.n)
            styles = 0.95 * styles + np.sqrt(1 - 0.95**2) * rng.normal(size=styles.shape)
            alpha = rho * alpha + np.sqrt(1 - rho**2) * rng.normal(size=self.n)
        return ln_cap, styles, alpha

    def cross_section(self, t: int = 0, w0: pd.Series | None = None) -> OptimInput:
        """Rebalance t's input; ``w0`` the current weights (None: no portfolio yet)."""
        ln_cap, other, alpha = self._state(t)
        size = zscore(ln_cap)
        X = pd.DataFrame(np.column_stack([size, nonlinear_size(size), other]), index=self.index,
                         columns=list(STYLES))
        rank = np.argsort(np.argsort(-ln_cap))
        lo, hi = (int(f * self.n) for f in self.bench_band)
        members = (rank >= lo) & (rank < hi)
        b = np.where(members, np.exp(ln_cap), 0.0)
        rng = np.random.default_rng([self.seed, 10_000 + t])
        draw = rng.random(self.n)
        p_s, p_u, p_d = self.p
        sus = draw < p_s
        up = (draw >= p_s) & (draw < p_s + p_u)
        down = (draw >= p_s + p_u) & (draw < p_s + p_u + p_d)
        s = lambda v: pd.Series(v, index=self.index)  # noqa: E731
        return OptimInput.build(
            alpha=s(alpha), benchmark=s(b / b.sum()), w0=w0,
            industry=s(self.industry_codes[self.industry]), exposures=X,
            suspended=s(sus), limit_up=s(up), limit_down=s(down),
        )
