"""Assemble the index-enhancement problem as one sparse LP (QP with a risk term), solver-neutral.

Variables: trades ``u, v >= 0`` around a reference ``r`` (``r = w0`` when a constraint has rows on
``|w - w0|``, e.g. turnover), ``w = r + u - v``.  The program reads only the constraints' own pieces
(``box``, ``rows``, ``trade_rows``, ``penalty_for``; see ``constraints.py``).  Then

* every per-stock box (long-only, tradability, the 1% band) becomes a *bound* on u and v
  (``u in [max(0, lo - r), max(0, hi - r)]``, ``v in [max(0, r - hi), max(0, r - lo)]``),
  exact both ways: any w in the box has such a split, and any such split lands in the box;
* trade rows ``H |w - w0| <= hi`` become ``H (u + v) <= hi``; one-sided turnover is the single row
  ``1/2 sum (u + v) <= limit`` (an upper bound on the true turnover, met with equality by the split
  ``u = (w - w0)+``);
* a stock that cannot buy (suspended, limit-up) has ``u`` fixed at 0; fixed columns are eliminated
  and moved into the row bounds, so an IPM never sees a zero-width box.

So the LP has ~n + (#holdings) columns and only ~40 dense rows (budget, industries, styles, floor,
moments, turnover) instead of ~4n rows: the cheapest statement we found (see bench/optimizer.py).
Elastic modes add one slack column per soft key; 'feasibility' minimises the priced slacks,
'capped' maximises alpha with slacks bounded by the feasibility optimum.

Each column and row carries its identity (``col_stock``/``col_side``: the stock and u/v side of a
trade column, ``row_keys``), so a simplex basis of one rebalance can warm-start the next one
(``solvers.WarmBasis``) whatever stocks entered, left or were fixed in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .constraints import Constraint, TradeRows, dense_rows
from .inputs import OptimInput

FIXED_TOL = 1e-12


class HardInfeasible(ValueError):
    """The hard constraints (budget, long-only, tradability) cannot all hold."""


@dataclass
class Program:
    """``min c.x + 1/2 x'Px  s.t.  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi``; ``w = w_const + W x``."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    w_const: np.ndarray
    W: sp.csr_matrix
    P: sp.csc_matrix | None = None
    slack_keys: list = field(default_factory=list)  # names of the last len(slack_keys) slack columns
    slack_cols: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    turnover_active: bool = False
    band_overrides: int = 0
    rows: dict = field(default_factory=dict)  # {constraint name: LinearRows} in w-space, for diagnostics
    index: pd.Index | None = None  # the stocks (OptimInput.index)
    col_stock: np.ndarray | None = None  # position in ``index`` of each trade column (-1: slack/risk column)
    col_side: np.ndarray | None = None  # 0 = u (buy), 1 = v (sell), -1 otherwise
    row_keys: list = field(default_factory=list)  # constraint key of each row of A

    @property
    def n_cols(self) -> int:
        return len(self.c)

    def weights(self, x: np.ndarray) -> np.ndarray:
        return self.w_const + self.W @ x

    def slacks(self, x: np.ndarray) -> dict:
        return {k: float(x[j]) for k, j in zip(self.slack_keys, self.slack_cols)}

    def violation(self, x: np.ndarray) -> float:
        """Largest violation of a row or column bound at x (brute force, unscaled)."""
        ax = self.A @ x
        worst = [np.max(self.row_lo - ax, initial=0.0), np.max(ax - self.row_hi, initial=0.0),
                 np.max(self.col_lo - x, initial=0.0), np.max(x - self.col_hi, initial=0.0)]
        return float(max(worst))


def trade_constraints(inp: OptimInput, constraints: list) -> list[tuple[Constraint, TradeRows]]:
    """The constraints with rows on ``|w - w0|`` for this input (e.g. an active turnover cap)."""
    found = [(c, c.trade_rows(inp)) for c in constraints if "trade_rows" in c.pieces]
    return [(c, t) for c, t in found if t is not None]


def _boxes(inp: OptimInput, constraints: list) -> tuple[np.ndarray, ...]:
    """``effective_box`` plus the soft box constraints (whose band the elastic mode may widen)."""
    L, U = np.full(inp.n, -np.inf), np.full(inp.n, np.inf)
    bl, bh = L.copy(), U.copy()
    soft = []
    for c in constraints:
        box = c.box(inp) if "box" in c.pieces else None
        if box is None:
            continue
        lo, hi = box
        if c.soft:
            bl, bh = np.maximum(bl, lo), np.minimum(bh, hi)
            soft.append(c)
        else:
            L, U = np.maximum(L, lo), np.minimum(U, hi)
    bad = L > U + FIXED_TOL
    if bad.any():
        raise HardInfeasible(f"hard bounds cross for {list(inp.index[bad][:5])}")
    U = np.maximum(U, L)
    override = (bl > U + FIXED_TOL) | (bh < L - FIXED_TOL)
    cl, ch = np.clip(bl, L, U), np.clip(bh, L, U)
    return L, U, cl, ch, override, soft


def effective_box(inp: OptimInput, constraints: list) -> tuple[np.ndarray, ...]:
    """Hard box ``[L, U]``, soft band ``[bl, bh]`` clipped into it, and the override mask.

    Clipping means a band that tradability makes unreachable is replaced by the nearest reachable
    weight (a suspended stock held above ``b + 1%`` keeps its weight) instead of relaxing the band
    of every stock; ``override`` marks the stocks where that happened.
    """
    return _boxes(inp, constraints)[:5]


def build_program(inp: OptimInput, constraints: list, mode: str = "plain", risk_aversion: float = 0.0,
                  slack_caps: dict | None = None) -> Program:
    """The LP/QP of ``constraints`` on ``inp``; ``mode`` in {'plain', 'feasibility', 'capped'}.

    Every constraint contributes through its own pieces (``box``, ``rows``, ``trade_rows``) and
    prices its slack keys (``penalty_for``); nothing here depends on a constraint's class.
    """
    if mode not in ("plain", "feasibility", "capped"):
        raise ValueError(f"unknown program mode {mode!r}")
    elastic = mode != "plain"
    L, U, bl, bh, override, soft_box = _boxes(inp, constraints)
    trades = trade_constraints(inp, constraints)
    w_const, W, col_lo, col_hi, fixed_trade, col_stock, col_side = _trade_columns(
        inp, *((L, U) if elastic else (bl, bh)), bool(trades))
    n, n_x = inp.n, W.shape[1]
    lin = {}
    price: dict[str, float] = {}
    mats, row_lo, row_hi, keys, is_soft = [], [], [], [], []
    for c in constraints:
        rows = c.rows(inp) if "rows" in c.pieces else None
        if rows is None:
            continue
        lin[c.name] = rows
        mats.append(rows.G)
        row_lo.append(rows.lo)
        row_hi.append(rows.hi)
        keys += rows.keys
        is_soft.append(np.full(len(rows.lo), c.soft))
        if c.soft and mode == "feasibility":
            price.update({k: c.penalty_for(k) for k in rows.keys})
    if elastic and soft_box:  # the stock band as rows, so that it can be widened
        key = "+".join(c.name for c in soft_box)
        price[key] = max(c.penalty_for(key) for c in soft_box)
        for idx, lo_b, hi_b in ((np.flatnonzero(bl > L + FIXED_TOL), bl, None),
                                (np.flatnonzero(bh < U - FIXED_TOL), None, bh)):
            mats.append(sp.csr_matrix((np.ones(len(idx)), (np.arange(len(idx)), idx)), shape=(len(idx), n)))
            row_lo.append(lo_b[idx] if lo_b is not None else np.full(len(idx), -np.inf))
            row_hi.append(hi_b[idx] if hi_b is not None else np.full(len(idx), np.inf))
            keys += [key] * len(idx)
            is_soft.append(np.ones(len(idx), dtype=bool))
    G = sp.vstack(mats, format="csr") if mats else sp.csr_matrix((0, n))
    shift = G @ w_const
    A = G @ W
    row_lo, row_hi = np.concatenate(row_lo or [[]]) - shift, np.concatenate(row_hi or [[]]) - shift
    is_soft = np.concatenate(is_soft or [np.zeros(0, dtype=bool)])
    if trades:  # H |w - w0| <= hi as H (u + v) <= hi, less the trades fixed columns already make
        for c, t in trades:  # H |W| = the columns of H at each trade column's stock (|W| has one 1 per column)
            H = t.H.toarray() if sp.issparse(t.H) else np.asarray(t.H, dtype=float)
            A = sp.vstack([A, dense_rows(H[:, col_stock])], format="csr")
            row_lo = np.r_[row_lo, np.full(len(t.hi), -np.inf)]
            row_hi = np.r_[row_hi, t.hi - H @ fixed_trade]
            keys += t.keys
            is_soft = np.r_[is_soft, np.full(len(t.hi), c.soft)]
            if c.soft and mode == "feasibility":
                price.update({k: c.penalty_for(k) for k in t.keys})
    slack_keys, slack_cols = [], np.zeros(0, dtype=np.int64)
    if elastic:
        A, row_lo, row_hi, slack_keys = _with_slacks(A, row_lo, row_hi, np.asarray(keys, dtype=object), is_soft)
        slack_cols = n_x + np.arange(len(slack_keys))
        W = sp.hstack([W, sp.csr_matrix((n, len(slack_keys)))], format="csr")
    n_s = len(slack_keys)
    row_keys = list(keys) if not elastic else []
    col_lo, col_hi = np.r_[col_lo, np.zeros(n_s)], np.r_[col_hi, np.full(n_s, np.inf)]
    c_vec = np.zeros(n_x + n_s)
    P = None
    if mode == "feasibility":
        c_vec[n_x:] = [price[k] for k in slack_keys]
    else:
        c_vec -= W.T @ inp.alpha
        if mode == "capped":
            caps = slack_caps or {}
            col_hi[n_x:] = [caps.get(k, 0.0) for k in slack_keys]
        if risk_aversion > 0:
            A, row_lo, row_hi, col_lo, col_hi, c_vec, W, P = _add_risk(
                inp, risk_aversion, A, row_lo, row_hi, col_lo, col_hi, c_vec, W, w_const)
    extra = len(c_vec) - n_x
    return Program(c=c_vec, A=A, row_lo=row_lo, row_hi=row_hi, col_lo=col_lo, col_hi=col_hi,
                   w_const=w_const, W=W, P=P, slack_keys=slack_keys, slack_cols=slack_cols,
                   turnover_active=bool(trades), band_overrides=int(override.sum()), rows=lin,
                   index=inp.index, col_stock=np.r_[col_stock, np.full(extra, -1)],
                   col_side=np.r_[col_side, np.full(extra, -1)], row_keys=row_keys)


def _trade_columns(inp: OptimInput, lo: np.ndarray, hi: np.ndarray, anchored: bool):
    """Columns ``u, v`` of ``w = r + u - v`` for the box ``[lo, hi]``; fixed ones folded into ``w_const``.

    ``anchored``: trades are measured from ``r = w0`` (a constraint has trade rows), else from the
    box point nearest 0.  Returns (w_const, W with w = w_const + W x, col_lo, col_hi, the absolute
    trade ``u + v`` of the fixed columns per stock, stock position and side (0 = u, 1 = v) of each column).
    """
    r = inp.w0 if anchored else np.clip(0.0, lo, hi)
    ulo, uhi = np.maximum(0.0, lo - r), np.maximum(0.0, hi - r)
    vlo, vhi = np.maximum(0.0, r - hi), np.maximum(0.0, r - lo)
    fu, fv = uhi - ulo > FIXED_TOL, vhi - vlo > FIXED_TOL
    iu, iv = np.flatnonzero(fu), np.flatnonzero(fv)
    nu, nv = len(iu), len(iv)
    u_fix, v_fix = np.where(fu, 0.0, ulo), np.where(fv, 0.0, vlo)
    W = sp.csr_matrix((np.r_[np.ones(nu), -np.ones(nv)], (np.r_[iu, iv], np.arange(nu + nv))),
                      shape=(inp.n, nu + nv))
    return (r + u_fix - v_fix, W, np.r_[ulo[iu], vlo[iv]], np.r_[uhi[iu], vhi[iv]],
            u_fix + v_fix, np.r_[iu, iv], np.r_[np.zeros(nu, np.int64), np.ones(nv, np.int64)])


def _with_slacks(A: sp.csr_matrix, lo: np.ndarray, hi: np.ndarray, keys: np.ndarray, soft: np.ndarray):
    """Elastic rows: each finite side of a soft row becomes ``A x + s_k >= lo`` or ``A x - s_k <= hi``
    with one slack column per key; hard rows stay as they are."""
    hard, s_lo, s_hi = ~soft, soft & np.isfinite(lo), soft & np.isfinite(hi)
    i_hard, i_lo, i_hi = np.flatnonzero(hard), np.flatnonzero(s_lo), np.flatnonzero(s_hi)
    A = A[np.r_[i_hard, i_lo, i_hi]]
    n_lo, n_hi = len(i_lo), len(i_hi)
    row_lo = np.r_[lo[i_hard], lo[i_lo], np.full(n_hi, -np.inf)]
    row_hi = np.r_[hi[i_hard], np.full(n_lo, np.inf), hi[i_hi]]
    codes, names = pd.factorize(np.r_[keys[i_lo], keys[i_hi]])
    rows = len(i_hard) + np.arange(n_lo + n_hi)
    S = sp.csr_matrix((np.r_[np.ones(n_lo), -np.ones(n_hi)], (rows, codes)), shape=(A.shape[0], len(names)))
    return sp.hstack([A, S], format="csr"), row_lo, row_hi, [str(k) for k in names]


def _add_risk(inp, lam, A, row_lo, row_hi, col_lo, col_hi, c_vec, W, w_const):
    """Tracking-risk term ``lam * (d'Dd + y'Fy)``, ``d = w - b``, ``y = X'd`` as k extra columns."""
    if inp.factor_cov is None or inp.specific_var is None:
        raise ValueError("risk_aversion > 0 needs factor_cov and specific_var in the optimizer input")
    X = np.stack([inp.exposure(f) for f in inp.risk_factors], axis=1)
    k, m = X.shape[1], A.shape[1]
    e = w_const - inp.benchmark
    # rows: y - X'W x = X'e
    XW = sp.csr_matrix(X.T @ W) if k else sp.csr_matrix((0, m))
    A = sp.vstack([sp.hstack([A, sp.csr_matrix((A.shape[0], k))]),
                   sp.hstack([-XW, sp.identity(k, format="csr")])]).tocsr()
    row_lo, row_hi = np.r_[row_lo, X.T @ e], np.r_[row_hi, X.T @ e]
    D = sp.diags(inp.specific_var)
    Pxx = 2 * lam * (W.T @ D @ W)
    P = sp.block_diag([Pxx, sp.csr_matrix(2 * lam * inp.factor_cov)], format="csc")
    c_vec = np.r_[c_vec + 2 * lam * (W.T @ (inp.specific_var * e)), np.zeros(k)]
    W = sp.hstack([W, sp.csr_matrix((W.shape[0], k))]).tocsr()
    return A, row_lo, row_hi, np.r_[col_lo, np.full(k, -np.inf)], np.r_[col_hi, np.full(k, np.inf)], c_vec, W, P
