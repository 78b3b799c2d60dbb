"""The named minute-factor library (SPEC 4.2; Huatai 2024 report p.4, "minute K-line factors").

Each factor maps one stock-day's 240 one-minute bars to one number, is stored as the daily field
``mf_<name>`` and is the Qlib operator named in its entry (``MinSkew()`` for ``mf_rskew``).
Notation (see ``algebra.py`` for missing minutes and zero denominators): ``r_t`` close-to-close
minute return over the present minutes ``t = 1..n``, ``v_t`` volume, ``a_t`` amount, ``p_t``
close, ``ref_t`` the previous close (the day's open for the first minute), ``V = sum v_t``.
Returns and ranges are plain fractions (0.01 = 1 %), not annualised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .algebra import Minutes
from .xp import Array, NumpyBackend

SMART_FRAC = 0.2       # share of traded minutes counted as "smart" (top |r|/sqrt(v))
TOPVOL_FRAC = 0.1      # share of minutes counted as the heaviest-volume ones
EDGE = 30              # minutes of the opening / closing window


@dataclass(frozen=True)
class MinuteFactor:
    """One named factor: short name, Qlib operator class name and the formula (a function)."""

    name: str
    op: str
    fn: Callable[[Minutes], Array]

    @property
    def field(self) -> str:
        """The daily field the batch engine writes: ``mf_<name>``."""
        return f"mf_{self.name}"

    @property
    def formula(self) -> str:
        return (self.fn.__doc__ or "").strip()


LIBRARY: dict[str, MinuteFactor] = {}


def _factor(name: str, op: str) -> Callable:
    def register(fn: Callable[[Minutes], Array]) -> Callable[[Minutes], Array]:
        LIBRARY[name] = MinuteFactor(name, op, fn)
        return fn

    return register


@_factor("rvol", "MinRVol")
def realised_vol(d: Minutes) -> Array:
    """Realised volatility ``sqrt(sum_t r_t^2)``."""
    return d.need(d.ns.sqrt(d.sum(d.r2, None)), d.n, 1)


@_factor("rskew", "MinSkew")
def realised_skew(d: Minutes) -> Array:
    """Realised skewness ``sqrt(n) * sum r_t^3 / (sum r_t^2)^1.5`` (Amaya et al. 2015)."""
    r2 = d.sum(d.r2, None)
    return d.div(d.ns.sqrt(d.n) * d.sum(d.r2 * d.ret, None), r2 * d.ns.sqrt(r2))


@_factor("rkurt", "MinKurt")
def realised_kurt(d: Minutes) -> Array:
    """Realised kurtosis ``n * sum r_t^4 / (sum r_t^2)^2`` (Amaya et al. 2015; 3 for Gaussian minutes)."""
    r2 = d.sum(d.r2, None)
    return d.div(d.n * d.sum(d.r2 * d.r2, None), r2 * r2)


@_factor("downvol", "MinDownVol")
def downside_vol_share(d: Minutes) -> Array:
    """Downside-volatility share ``sum_{r_t<0} r_t^2 / sum_t r_t^2``."""
    return d.share(d.r2, d.down())


@_factor("corr_pv", "MinCorrPV")
def corr_price_volume(d: Minutes) -> Array:
    """Price-volume correlation ``corr_t(p_t, v_t)``."""
    return d.corr(d.close, d.volume, d.valid)


@_factor("corr_vr", "MinCorrVR")
def corr_volume_return(d: Minutes) -> Array:
    """Volume-return correlation ``corr_t(v_t, r_t)`` (high when volume comes on up-minutes)."""
    return d.corr(d.volume, d.ret, d.valid)


@_factor("ret_open30", "MinRetOpen30")
def return_open30(d: Minutes) -> Array:
    """First-30-minute return ``prod_{t<=30} (1 + r_t) - 1`` = close 10:00 / open - 1."""
    return d.compound(d.first(EDGE))


@_factor("ret_close30", "MinRetClose30")
def return_close30(d: Minutes) -> Array:
    """Last-30-minute return ``prod_{t>210} (1 + r_t) - 1`` = close 15:00 / close 14:30 - 1."""
    return d.compound(d.last(EDGE))


@_factor("vshare_open30", "MinVShareOpen30")
def volume_share_open30(d: Minutes) -> Array:
    """Opening volume share ``sum_{t<=30} v_t / V`` (09:31-10:00)."""
    return d.share(d.volume, d.first(EDGE))


@_factor("vshare_close30", "MinVShareClose30")
def volume_share_close30(d: Minutes) -> Array:
    """Closing volume share ``sum_{t>210} v_t / V`` (14:31-15:00)."""
    return d.share(d.volume, d.last(EDGE))


@_factor("trend", "MinTrend")
def trend_strength(d: Minutes) -> Array:
    """Trend strength ``(p_last - open) / sum_t |p_t - ref_t|`` in [-1, 1] (path efficiency)."""
    move = d.close - d.ref
    return d.div(d.sum(move, d.valid), d.sum(d.ns.abs(move), d.valid))


@_factor("smart", "MinSmart")
def smart_money(d: Minutes) -> Array:
    """Smart money ``vwap(S) / vwap(all) - 1``, ``vwap(M) = sum_M a_t / sum_M v_t``.

    ``S`` = the traded minutes (``v_t > 0``) whose score ``|r_t| / sqrt(v_t)`` is among the top
    ``ceil(0.2 * n_traded)`` (ties kept): big moves on little volume.  Positive when the "smart"
    minutes traded dear relative to the day (after Kaiyuan Securities' smart-money factor, with a
    fixed minute share instead of a cumulative-volume cut).
    """
    traded = d.traded()
    score = d.ns.abs(d.ret) / d.ns.sqrt(d.ns.where(traded, d.volume, 1.0))
    return d.vwap(d.top(score, SMART_FRAC, traded)) / d.vwap(traded) - 1.0


@_factor("amp", "MinAmp")
def mean_amplitude(d: Minutes) -> Array:
    """Mean minute amplitude ``mean_t (high_t - low_t) / ref_t``."""
    return d.mean((d.high - d.low) / d.ref, d.valid)


@_factor("vhhi", "MinVolHHI")
def volume_hhi(d: Minutes) -> Array:
    """Volume concentration: Herfindahl ``sum_t (v_t / V)^2`` (1/240 when flat, 1 in one minute)."""
    return d.hhi(d.volume, d.valid)


@_factor("topvol_ret", "MinTopVolRet")
def top_volume_return(d: Minutes) -> Array:
    """Return in the heaviest minutes ``prod_{t in T} (1 + r_t) - 1``, ``T`` = top 10 % minutes by volume."""
    return d.compound(d.top(d.volume, TOPVOL_FRAC, d.valid))


MF_FIELDS = [f.field for f in LIBRARY.values()]


def resolve(names: Iterable[str] | None = None) -> list[MinuteFactor]:
    """Factors by short name (``rskew``), field (``mf_rskew``) or operator (``MinSkew``); all by default."""
    if names is None:
        return list(LIBRARY.values())
    lookup = {k: f for f in LIBRARY.values() for k in (f.name, f.field, f.op)}
    unknown = [n for n in names if n not in lookup]
    if unknown:
        raise KeyError(f"unknown minute factors {unknown}; known: {sorted(LIBRARY)}")
    return [lookup[n] for n in names]


def compute_library(bars: Mapping[str, Array] | Minutes, names: Iterable[str] | None = None,
                    xp: NumpyBackend | None = None) -> dict[str, Array]:
    """All (or the named) factors of bars ``[..., 240]``, sharing one :class:`Minutes`; keys = fields."""
    d = bars if isinstance(bars, Minutes) else Minutes(bars, xp)
    return {f.field: f.fn(d) for f in resolve(names)}


def mean_expressions(window: int = 20, names: Iterable[str] | None = None, ops: bool = False) -> dict[str, str]:
    """``{column: expression}`` of the N-day means for a handler, e.g. ``Mean($mf_rskew, 20)``.

    ``ops=False`` reads the stored ``mf_*`` fields (fast, after ``build_minute_factors``);
    ``ops=True`` computes them on the fly from the 1-minute bins, e.g. ``Mean(MinSkew(), 20)``.
    """
    if window < 1:
        raise ValueError(f"mean_expressions: window={window} must be >= 1")
    out = {}
    for f in resolve(names):
        base = f"{f.op}()" if ops else f"${f.field}"
        out[f"{f.field}_mean{window}"] = base if window == 1 else f"Mean({base}, {window})"
    return out
