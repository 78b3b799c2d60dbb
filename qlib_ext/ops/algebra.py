"""A small algebra over one session's 240 one-minute bars: returns, masks and reductions.

Every array is ``[..., 240]`` (leading axes = stocks, days, ...); every reduction maps the last axis
to one number, so a whole panel of stock-days is computed at once.  :class:`Minutes` prepares the
bars once (validity, reference prices, returns) and carries the reductions, so a factor reads as a
formula: ``d.corr(d.volume, d.ret, d.valid)``.

Conventions (the same for every factor and both execution paths):

* a minute is *present* when all six fields are finite, ``close > 0`` and ``volume >= 0``;
  missing minutes (NaN) are skipped: every statistic is computed over the present minutes only,
  and their count ``n`` is kept (:attr:`Minutes.n`).  Zero-volume minutes are present (their return
  is what their prices say, usually 0); they are left out only where a formula divides by volume.
* minute return ``r_t = (close_t - ref_t) / ref_t`` with ``ref_t`` the close of the previous
  *present* minute, and for the first present minute its own open (so ``prod(1 + r_t) =
  close_last / open_first`` and a gap does not drop the move across it); the difference is taken
  first, which is exact for nearby prices and keeps float32 accurate.  ``bar_ret`` is the intrabar
  ``close_t / open_t - 1``.
* a suspended day (no present minute) gives NaN for every statistic; a ratio whose denominator is
  0 is NaN (never inf): e.g. constant prices (a limit-locked one-word board) give realised
  volatility 0 but NaN skewness, kurtosis, correlation and trend strength; a moment needs enough
  minutes (std/corr 2, skew 3, kurt 4) or it is NaN.
* masks are boolean arrays that already exclude missing minutes; top-k masks keep the minutes whose
  score is >= the k-th largest (ties at the threshold are all kept), ``k = ceil(frac * n_scored)``.

Speed: masked sums are row-wise dot products with the 0/1 mask (``np.vecdot``: no temporary, no
branch; a ``where`` on a data-dependent mask costs ~8 ns an element, the dot ~0.2), missing minutes
are zero-filled once so every array is finite, blocks with every minute present skip masking
altogether, and top-k thresholds come from a partition, not a sort.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

from .xp import Array, NumpyBackend, backend_for

FIELDS = ("open", "high", "low", "close", "volume", "amount")
N_MINUTES = 240


class Minutes:
    """Bars of one session per row, prepared once; the masks and reductions of the algebra."""

    def __init__(self, bars: Mapping[str, Array], xp: NumpyBackend | None = None):
        missing = [f for f in FIELDS if f not in bars]
        if missing:
            raise KeyError(f"minute bars lack fields {missing}; need {list(FIELDS)}")
        self.xp = xp or backend_for(bars["close"])
        self.ns = self.xp.ns
        self.open, self.high, self.low, self.close, self.volume, self.amount = (self.xp.asarray(bars[f]) for f in FIELDS)
        if self.close.shape[-1] != N_MINUTES:
            raise ValueError(f"minute bars have {self.close.shape[-1]} minutes on the last axis, expected {N_MINUTES}")
        ns = self.ns
        self.valid = ns.isfinite(self.open + self.high + self.low + self.close + self.volume + self.amount)
        self.valid &= (self.close > 0) & (self.volume >= 0)
        self.full = bool(self.valid.all())      # every minute present: masked steps become plain ones
        self._centered: dict = {}
        self._fmask: dict = {}
        if not self.full:                       # missing minutes hold 0, so masked sums are dot products
            self.open, self.high, self.low, self.close, self.volume, self.amount = (
                ns.where(self.valid, x, 0.0) for x in (self.open, self.high, self.low, self.close, self.volume, self.amount))

    # -- prepared per-minute quantities -------------------------------------------------------
    @cached_property
    def n(self) -> Array:
        """Number of present minutes of each row (float)."""
        return self.rowsum(self.fvalid)

    @cached_property
    def ones(self) -> Array:
        return self.xp.full((N_MINUTES,), 1.0)

    @cached_property
    def fvalid(self) -> Array:
        """The present-minute mask as 0/1 floats."""
        return self.xp.cast(self.valid)

    @cached_property
    def slot(self) -> Array:
        """Minute position 0..239 in the session (09:31 = 0, 13:01 = 120)."""
        return self.xp.arange(N_MINUTES)

    @cached_property
    def ref(self) -> Array:
        """Reference price of each minute: the previous present close, or the first present open
        (1 on missing minutes, so that every derived array stays finite)."""
        ns, xp = self.ns, self.xp
        if self.full:
            ref = ns.empty_like(self.close)
            ref[..., 0] = self.open[..., 0]
            ref[..., 1:] = self.close[..., :-1]
            return ns.where(ref > 0, ref, self.close)
        last = xp.cummax(ns.where(self.valid, self.slot, -1))      # latest present minute <= t
        prev_close = xp.take(self.close, ns.where(last >= 0, last, 0))
        ref = ns.empty_like(self.close)
        ref[..., 1:] = ns.where(last[..., :-1] >= 0, prev_close[..., :-1], self.open[..., 1:])
        ref[..., 0] = self.open[..., 0]
        ref = ns.where(ref > 0, ref, self.close)
        return ns.where(self.valid, ref, 1.0)

    @cached_property
    def ret(self) -> Array:
        """Close-to-close minute return ``(close_t - ref_t) / ref_t``; 0 on missing minutes."""
        r = (self.close - self.ref) / self.ref
        return r if self.full else self.ns.where(self.valid, r, 0.0)

    @cached_property
    def r2(self) -> Array:
        """Squared minute return ``r_t^2``; 0 on missing minutes."""
        return self.ret * self.ret

    @cached_property
    def logret(self) -> Array:
        """Log minute return ``log(1 + r_t)``; 0 on missing minutes."""
        return self.ns.log1p(self.ret)

    @cached_property
    def bar_ret(self) -> Array:
        """Intrabar return ``close_t / open_t - 1``; 0 on missing minutes."""
        ok = self.valid & (self.open > 0)
        return self.ns.where(ok, (self.close - self.open) / self.ns.where(ok, self.open, 1.0), 0.0)

    # -- masks ---------------------------------------------------------------------------------
    def up(self) -> Array:
        """Present minutes with ``r_t > 0``."""
        return self.valid & (self.ret > 0)

    def down(self) -> Array:
        """Present minutes with ``r_t < 0``."""
        return self.valid & (self.ret < 0)

    def first(self, n: int) -> Array:
        """Present minutes among the first ``n`` of the session (09:31 .. 09:30+n)."""
        return self.valid & (self.slot < n)

    def last(self, n: int) -> Array:
        """Present minutes among the last ``n`` of the session (.. 15:00)."""
        return self.valid & (self.slot >= N_MINUTES - n)

    def traded(self) -> Array:
        """Present minutes with positive volume."""
        return self.valid & (self.volume > 0)

    def top(self, score: Array, frac: float, within: Array | None = None) -> Array:
        """Minutes of ``within`` whose ``score`` is among the top ``k = ceil(frac * n_within)``.

        Threshold by partition (not a sort), grouping rows by their k so each group is one call.
        """
        if not 0 < frac <= 1:
            raise ValueError(f"top: frac={frac} must be in (0, 1]")
        xp, ns = self.xp, self.ns
        within = self.valid if within is None else within
        k = xp.ceil(self.count(within) * frac - 1e-6)
        s = ns.where(within, score, -float("inf"))
        s2, k2 = s.reshape(-1, N_MINUTES), k.reshape(-1)
        thr = xp.full(k2.shape, float("inf"))
        for kk in xp.unique(k2):
            if kk <= 0:
                continue
            sel = k2 == kk
            if bool(sel.all()):
                thr = xp.kth_largest(s2, kk)
            else:
                rows = xp.nonzero_rows(sel)
                thr[rows] = xp.kth_largest(s2[rows], kk)
        return within & (s >= thr.reshape(k.shape)[..., None])

    # -- reductions ----------------------------------------------------------------------------
    def div(self, a: Array, b: Array) -> Array:
        """``a / b``, NaN where ``b == 0`` (no inf, no warning)."""
        return a / self.ns.where(b != 0, b, float("nan"))

    def count(self, mask: Array) -> Array:
        """Number of minutes in ``mask`` (float)."""
        return self.n if mask is self.valid else self.rowsum(self._f(mask))

    def _f(self, mask: Array) -> Array:
        """The mask as 0/1 floats (cast once per mask object)."""
        if mask is self.valid:
            return self.fvalid
        hit = self._fmask.get(id(mask))
        if hit is None:
            hit = self._fmask[id(mask)] = (mask, self.xp.cast(mask))   # mask kept alive: its id stays unique
        return hit[1]

    def sum(self, x: Array, mask: Array | None) -> Array:
        """Sum of ``x`` over the mask (0 for an empty mask): a row-wise dot with the 0/1 mask.

        ``x`` must be finite (the prepared fields and derived arrays are: missing minutes hold 0).
        ``mask=None``: ``x`` is already 0 off the present minutes (``ret``, ``r2``, fields, ...).
        """
        if mask is None or (mask is self.valid and self.full):
            return self.rowsum(x)
        return self.xp.dot(x, self._f(mask))

    def rowsum(self, x: Array) -> Array:
        """Sum over the minutes (a dot with ones: faster than ``sum(-1)`` in NumPy)."""
        return self.xp.dot(x, self.ones)

    def mean(self, x: Array, mask: Array) -> Array:
        """Mean over the mask; NaN for an empty mask."""
        return self.div(self.sum(x, mask), self.count(mask))

    def center(self, x: Array, mask: Array) -> Array:
        """``x - mean(x)`` on the mask, 0 elsewhere.

        ``x`` is first shifted by its first value on the mask (an exact subtraction for prices),
        so float32 keeps the digits of small moves around a large level (minute prices).
        """
        key = (id(x), id(mask))
        if key in self._centered:
            return self._centered[key][2]
        ns = self.ns
        if mask is self.valid and self.full:
            y = x - x[..., :1]
            y -= (self.rowsum(y) / self.n)[..., None]
        else:
            m = self._f(mask)
            y = (x - self.xp.take(x, self.xp.first_true(mask)[..., None])) * m
            y = (y - ns.where(self.count(mask) > 0, self.rowsum(y) / self.count(mask), 0.0)[..., None]) * m
        self._centered[key] = (x, mask, y)            # x, mask kept alive: their ids stay unique
        return y

    def _central(self, x: Array, mask: Array, powers: tuple[int, ...]) -> tuple[Array, list[Array]]:
        n = self.count(mask)
        dx = self.center(x, mask)
        dot = self.xp.dot
        dx2 = dx * dx if 3 in powers or 4 in powers else None
        pw = {2: lambda: dot(dx, dx), 3: lambda: dot(dx2, dx), 4: lambda: dot(dx2, dx2)}
        return n, [self.div(pw[p](), n) for p in powers]

    def need(self, value: Array, n: Array, k: int) -> Array:
        """``value`` where at least ``k`` minutes went into it (``n >= k``), else NaN."""
        return self.ns.where(n >= k, value, float("nan"))

    def std(self, x: Array, mask: Array) -> Array:
        """Population standard deviation ``sqrt(mean((x - mean x)^2))``; needs 2 minutes."""
        n, (m2,) = self._central(x, mask, (2,))
        return self.need(self.ns.sqrt(m2), n, 2)

    def skew(self, x: Array, mask: Array) -> Array:
        """Population skewness ``m3 / m2^1.5`` (scipy ``skew(bias=True)``); needs 3 minutes."""
        n, (m2, m3) = self._central(x, mask, (2, 3))
        return self.need(self.div(m3, m2 * self.ns.sqrt(m2)), n, 3)

    def kurt(self, x: Array, mask: Array) -> Array:
        """Population excess kurtosis ``m4 / m2^2 - 3`` (scipy ``kurtosis(bias=True)``); needs 4 minutes."""
        n, (m2, m4) = self._central(x, mask, (2, 4))
        return self.need(self.div(m4, m2 * m2) - 3.0, n, 4)

    def corr(self, x: Array, y: Array, mask: Array) -> Array:
        """Pearson correlation of ``x`` and ``y`` over the mask; NaN when either is constant."""
        n = self.count(mask)
        dx, dy = self.center(x, mask), self.center(y, mask)
        dot = self.xp.dot
        return self.need(self.div(dot(dx, dy), self.ns.sqrt(dot(dx, dx) * dot(dy, dy))), n, 2)

    def share(self, x: Array, mask: Array, base: Array | None = None) -> Array:
        """``sum(x on mask) / sum(x on base)`` (base: all present minutes), e.g. a volume share."""
        return self.div(self.sum(x, mask), self.sum(x, self.valid if base is None else base))

    def compound(self, mask: Array) -> Array:
        """Compounded return over the mask ``prod(1 + r_t) - 1``; NaN for an empty mask."""
        total = self.ns.expm1(self.sum(self.logret, mask))
        return self.need(total, self.count(mask), 1)

    def vwap(self, mask: Array) -> Array:
        """Volume-weighted price over the mask ``sum(amount) / sum(volume)``; NaN without volume."""
        return self.div(self.sum(self.amount, mask), self.sum(self.volume, mask))

    def hhi(self, x: Array, mask: Array) -> Array:
        """Herfindahl index of the shares of ``x`` over the mask ``sum((x_t / sum x)^2)``."""
        tot = self.sum(x, mask)
        return self.div(self.sum(x * x, mask), tot * tot)
