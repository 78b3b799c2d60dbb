"""Stylized facts of a dataset next to the real-market calibration targets (SPEC 3.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...schema import BENCHMARKS
from ..panel import read_calendar, read_panel

#: Values measured on the real fixture (CSI300/500/1000 members, 2021-01-04 .. 2024-03-29), from SPEC 3.2.
REAL_TARGETS = {
    "limit_up_share": 0.0098, "limit_down_share": 0.0022, "oneword_share_of_limit_up": 0.069,
    "median_ts_std": 0.0276, "median_cs_std": 0.0250, "excess_kurtosis": 4.6, "median_turnover": 0.0088,
    "csi1000_vs_csi300_2021h2_2024jan": 0.218, "mdd_csi1000_2024": -0.267, "mdd_csi500_2024": -0.175,
    "mdd_csi300_2024": -0.061, "csi1000_rebound_2024": 0.134,
    "volume_share_first30": 0.256, "volume_share_mid180": 0.621, "volume_share_last30": 0.123,
    "suspended_share": 0.0010,
}


def _window_return(s: pd.Series, a: str, b: str) -> float:
    w = s.loc[a:b].dropna()
    return float(w.iloc[-1] / w.iloc[0] - 1) if len(w) > 1 else np.nan


def _max_drawdown(s: pd.Series, a: str, b: str) -> float:
    w = s.loc[a:b].dropna()
    return float((w / w.cummax() - 1).min()) if len(w) else np.nan


def stylized_facts(root: str | Path) -> pd.DataFrame:
    """Table of (fact, dataset value, real value) for a Qlib dataset with our fields."""
    root = Path(root)
    close, up, dn = (read_panel(root, f) for f in ("close", "up_limit", "down_limit"))
    opn, high, low = (read_panel(root, f) for f in ("open", "high", "low"))
    change, turnover, paused = (read_panel(root, f) for f in ("change", "turnover", "paused"))
    window = slice("2021-01-04", "2024-03-29")
    traded = close.notna()
    at_up = (close >= up - 0.005) & traded
    at_dn = (close <= dn + 0.005) & traded
    oneword = at_up & (opn == close) & (high == close) & (low == close)
    r = change.loc[window]
    vals = r.to_numpy().ravel()
    vals = vals[np.isfinite(vals)]
    kurt = float(((vals - vals.mean()) ** 4).mean() / vals.var() ** 2 - 3) if vals.size else np.nan
    idx = {b: read_panel(root, "close", [info.instrument])[info.instrument] for b, info in BENCHMARKS.items()}
    facts = {
        "limit_up_share": float(at_up.loc[window].sum().sum() / traded.loc[window].sum().sum()),
        "limit_down_share": float(at_dn.loc[window].sum().sum() / traded.loc[window].sum().sum()),
        "oneword_share_of_limit_up": float(oneword.loc[window].sum().sum() / max(at_up.loc[window].sum().sum(), 1)),
        "median_ts_std": float(r.std().median()),
        "median_cs_std": float(r.std(axis=1).median()),
        "excess_kurtosis": kurt,
        "median_turnover": float(np.nanmedian(turnover.loc[window].where(traded.loc[window]).to_numpy())),
        "csi1000_vs_csi300_2021h2_2024jan": (1 + _window_return(idx["csi1000"], "2021-07-01", "2024-01-19"))
        / (1 + _window_return(idx["csi300"], "2021-07-01", "2024-01-19")) - 1,
        "mdd_csi1000_2024": _max_drawdown(idx["csi1000"], "2024-01-01", "2024-02-08"),
        "mdd_csi500_2024": _max_drawdown(idx["csi500"], "2024-01-01", "2024-02-08"),
        "mdd_csi300_2024": _max_drawdown(idx["csi300"], "2024-01-01", "2024-02-08"),
        "csi1000_rebound_2024": _window_return(idx["csi1000"], "2024-02-07", "2024-03-29"),
        "suspended_share": float((paused == 1).sum().sum() / paused.notna().sum().sum()),
    }
    facts.update(_intraday_volume_shares(root))
    return pd.DataFrame(
        {"dataset": pd.Series(facts), "real": pd.Series(REAL_TARGETS)}
    ).loc[list(REAL_TARGETS)]


def _intraday_volume_shares(root: Path) -> dict:
    """Volume share of the first 30 / middle 180 / last 30 minutes, pooled over the minute bins."""
    try:
        cal = read_calendar(root, "1min")
    except FileNotFoundError:
        return {}
    inst = sorted(read_panel(root, "close").columns)[:200]
    vol = read_panel(root, "volume", inst, freq="1min").to_numpy()
    n_days = len(cal) // 240
    v = np.nan_to_num(vol[: n_days * 240]).reshape(n_days, 240, -1).sum(axis=(0, 2))
    tot = v.sum()
    if tot <= 0:
        return {}
    return {"volume_share_first30": v[:30].sum() / tot, "volume_share_mid180": v[30:210].sum() / tot,
            "volume_share_last30": v[210:].sum() / tot}


#: The report's figures 16-17: mean daily rank correlation of the planted composite with styles.
ALPHA_STYLE_TARGETS = {"ret_10": -0.28, "std_10d": -0.43, "turn_10d": -0.41, "size": 0.0}
NAV_DATES = ("2024-01-31", "2024-02-05", "2024-02-07", "2024-02-29", "2024-03-29")
#: tolerances of the period-path facts (issue 9): quarterly 2021-2024Q1, 2024Q1 NAVs, yearly 2017-2020
PATH_TOL = {"quarter": 0.04, "nav": 0.03, "year": 0.08}


def _index_closes(root: Path) -> pd.DataFrame:
    codes = {b: info.instrument for b, info in BENCHMARKS.items()}
    px = read_panel(root, "close", list(codes.values())).astype(float)
    return px.rename(columns={v: k for k, v in codes.items()})[list(codes)]


def _period_returns(px: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Close-to-close returns per calendar period; the first period only if it starts at its first day."""
    last = px.groupby(px.index.to_period(freq)).tail(1)
    ret = last.pct_change()
    return ret.set_axis(last.index.to_period(freq)).iloc[1:]


def path_facts(root: str | Path) -> pd.DataFrame:
    """Index path facts of a dataset next to their targets: rows (fact, dataset, real, tol, ok).

    * ``q:<band>:<YYYYQn>``: quarterly returns 2021Q1..2024Q1 against the real closes (packaged file);
    * ``nav:<band>:<date>``: 2024Q1 NAVs relative to 2023-12-29 against the real ones;
    * ``y:<band>:<year>``: yearly returns 2017-2020 against the preset's targets (``path.periods``);
    * ``order:<year>``: whether CSI300 > CSI500 > CSI1000 ordering of that year matches the target's.
    """
    import yaml

    from .path import read_daily_targets

    root = Path(root)
    px = _index_closes(root)
    real = read_daily_targets()
    rows = []
    if px.index[0] <= pd.Timestamp("2020-12-31") and px.index[-1] >= pd.Timestamp("2024-03-29"):
        qs, qr = _period_returns(px.loc[:"2024-03-29"], "Q"), _period_returns(real, "Q")
        for q in qr.index:
            for b in px.columns:
                rows.append((f"q:{b}:{q}", qs.loc[q, b], qr.loc[q, b], PATH_TOL["quarter"]))
    if px.index[0] <= pd.Timestamp("2023-12-29") and px.index[-1] >= pd.Timestamp("2024-03-29"):
        for d in NAV_DATES:
            for b in px.columns:
                rows.append((f"nav:{b}:{d}", px.loc[d, b] / px.loc["2023-12-29", b],
                             real.loc[d, b] / real.loc["2023-12-29", b], PATH_TOL["nav"]))
    cfg = yaml.safe_load((root / "meta" / "market.yaml").read_text())
    ys = _period_returns(px, "Y") if len(px) else pd.DataFrame()
    for per in (cfg.get("path") or {}).get("periods", []):
        end = pd.Timestamp(per["end"])
        if not (2017 <= end.year <= 2020) or end.month != 12 or pd.Period(end.year, "Y") not in ys.index:
            continue
        got = ys.loc[pd.Period(end.year, "Y")]
        for b in px.columns:
            rows.append((f"y:{b}:{end.year}", got[b], float(per[b]), PATH_TOL["year"]))
        want = [float(per[b]) for b in px.columns]
        same = list(np.argsort(got.to_numpy())) == list(np.argsort(want)) and all(
            np.sign(g) == np.sign(w) for g, w in zip(got.to_numpy(), want))
        rows.append((f"order:{end.year}", float(same), 1.0, 0.0))
    out = pd.DataFrame(rows, columns=["fact", "dataset", "real", "tol"]).set_index("fact")
    out["ok"] = (out["dataset"] - out["real"]).abs() <= out["tol"] + 1e-12
    return out


def alpha_style_facts(root: str | Path) -> pd.DataFrame:
    """Mean daily rank correlation of the planted composite with ret_10 / std_10d / turn_10d / size
    (from ``meta/planted_alpha_style.csv``, written by the generator), next to the report's values."""
    table = pd.read_csv(Path(root) / "meta" / "planted_alpha_style.csv", index_col="date")
    got = table.mean()
    return pd.DataFrame({"dataset": got.reindex(list(ALPHA_STYLE_TARGETS)),
                         "real": pd.Series(ALPHA_STYLE_TARGETS)}).rename(index=lambda k: f"alpha_corr_{k}")


#: Factor-level facts of issue 21 (the report's mechanisms): name -> (target, tolerance, source).
MECHANISM_TARGETS = {
    "unwind_months": (-1.0, 0.5, "knob: the unwind takes back about one month of normal long-leg excess"),
    "crowding_peak_sessions": (0.0, 2.0, "figures 21-22: turn_10d top/bottom 5% peaks 2024-02-05..02-07"),
    "top5_size": (-0.59, 0.30, "figure 18: size of the top 5% (standard units, whole market)"),
    "bottom5_size": (1.70, 0.75, "figure 18: size of the bottom 5%"),
    "size_corr_mean": (0.047, 0.06, "figure 16: mean daily size correlation"),
    "size_corr_min_feb": (-0.49, 0.12, "figure 16: size correlation in the first days of February 2024"),
    "ic_mean": (0.07, 0.02, "2021-2024Q1 (the decayed calendar): the composite without mechanisms 0.071, "
                "fixture LightGBM 0.059; issue 21's 0.07-0.11 is the main job's 2017-2024"),
    "icir_1800": (0.90, 0.35, "issue 21: daily rank ICIR 0.6-1.2 (fixture LightGBM 0.55), at 1,800 names"),
    "negative_month_share": (0.15, 0.10, "issue 21: some negative months"),
}
#: tolerances of the steered spreads against the fixture: crash/rebound deciles, half-year quintiles
SPREAD_TOL = {"decile": 0.02, "quintile": 0.03}
CROWDING_PEAK = "2024-02-06"


def mechanism_facts(root: str | Path) -> pd.DataFrame:
    """Issue 21's factor-level facts of a dataset built with ``mechanisms:``: rows (fact, dataset, real, tol, ok).

    * ``spread:<window>:<spread>``: crash / rebound decile spreads and the half-year size / liquidity
      quintile paths against the real fixture (``spread_targets.csv``; definitions in :mod:`.spreads`);
    * from ``meta/planted_alpha_daily.csv`` (planted composite known at t-1, 2021-01-04 .. 2024-03-29):
      ``unwind_months``: the neutralised composite's planted top-decile excess over 2024-02-05..02-07 in
      months (21 sessions) of its normal level (the mean over 2023-07..2024-03 outside that window, per unit
      of the day's strength multiplier ``mult``, i.e. without the monthly noise); ``crowding_peak_sessions``:
      sessions from 2024-02-06 to the 2024Q1 peak of turn_10d(top 5%) / turn_10d(bottom 5%);
      ``top5_size`` / ``bottom5_size``: mean size (z of ln mcap) of its top / bottom 5%; ``ic_mean``;
      ``icir_1800``: mean / sd of the daily rank IC with the sampling variance 1/(n-1) of the day's n names
      swapped for that of 1,800 names (the fixture's members), so a 120-stock market is comparable;
      ``negative_month_share``: months with a negative mean IC;
    * from ``meta/planted_alpha_style.csv``: ``size_corr_mean`` and ``size_corr_min_feb`` (2024-02-01..02-08).
    """
    from .mechanisms import read_spread_targets
    from .spreads import daily_spreads, dataset_panels

    root = Path(root)
    rows = []
    tgt = read_spread_targets()
    daily = daily_spreads(*dataset_panels(root))
    for (w, a, b), g in tgt.groupby(["window", "start", "end"], sort=False):
        if daily.index[0] > a or daily.index[-1] < b - pd.Timedelta(days=3):
            continue
        got = daily.loc[a:b].sum()
        for j, v in zip(g["spread"], g["value"]):
            tol = SPREAD_TOL["quintile" if j.endswith("_q") else "decile"]
            rows.append((f"spread:{w}:{j}", float(got[j]), float(v), tol))
    a = pd.read_csv(root / "meta" / "planted_alpha_daily.csv", index_col="date", parse_dates=["date"])
    a = a.loc["2021-01-04":"2024-03-29"]
    style = pd.read_csv(root / "meta" / "planted_alpha_style.csv", index_col="date", parse_dates=["date"])
    got = {}
    if len(a.loc["2024-02-05":"2024-02-07"]) and len(a.loc["2023-07-01":]):
        window = a.loc["2024-02-05":"2024-02-07"].index
        calm = a.loc["2023-07-01":"2024-03-29"].drop(window)
        normal = (calm["long_planted"] / calm["mult"].where(calm["mult"].abs() > 0.2)).mean() * 21
        got["unwind_months"] = a.loc[window, "long_planted"].sum() / normal
        q1 = a.loc["2024-01-02":"2024-03-29", "crowding"]
        got["crowding_peak_sessions"] = float(q1.index.get_loc(q1.idxmax()) - q1.index.searchsorted(pd.Timestamp(CROWDING_PEAK)))
        got["size_corr_min_feb"] = float(style.loc["2024-02-01":"2024-02-08", "size"].min())
    got["top5_size"], got["bottom5_size"] = float(a["top_size"].mean()), float(a["bottom_size"].mean())
    got["size_corr_mean"] = float(style["size"].mean())
    ic = a["ic"]
    signal_var = max(float(ic.var() - (1 / (a["n"] - 1)).mean()), 0.0)
    got["ic_mean"] = float(ic.mean())
    got["icir_1800"] = float(ic.mean() / np.sqrt(signal_var + 1 / 1799))
    got["negative_month_share"] = float((ic.resample("ME").mean() < 0).mean())
    for k, (target, tol, _) in MECHANISM_TARGETS.items():
        if k in got:
            rows.append((k, float(got[k]), target, tol))
    out = pd.DataFrame(rows, columns=["fact", "dataset", "real", "tol"]).set_index("fact")
    out["ok"] = (out["dataset"] - out["real"]).abs() <= out["tol"] + 1e-12
    return out
