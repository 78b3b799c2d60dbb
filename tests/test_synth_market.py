"""Stylized facts of the synthetic market (tiny preset), asserted with tolerances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.panel import read_calendar, read_instruments, read_panel
from qlib_ext.data.synth.indexes import INDEX_CODES, reconstitution_days

FIELDS = ("open", "high", "low", "close", "vwap", "volume", "amount", "change", "up_limit", "down_limit",
          "paused", "mcap", "float_mcap", "turnover", "w_csi300", "w_csi500", "w_csi1000")


@pytest.fixture(scope="module")
def panels(tiny_market):
    return {f: read_panel(tiny_market, f) for f in FIELDS}


@pytest.fixture(scope="module")
def meta(tiny_market):
    return pd.read_csv(tiny_market / "meta" / "instruments.csv").set_index("instrument")


def rank_ic(factor: pd.DataFrame, fwd: pd.DataFrame, step: int = 10) -> pd.Series:
    """Daily Spearman IC on every ``step``-th day (non-overlapping forward windows)."""
    f, r = factor.iloc[::step], fwd.iloc[::step]
    return f.rank(axis=1).corrwith(r.rank(axis=1), axis=1).dropna()


def test_returns_respect_price_limits(panels, meta):
    close, up, dn, chg = panels["close"], panels["up_limit"], panels["down_limit"], panels["change"]
    traded = close.notna()
    assert ((close <= up + 1e-3) | ~traded).all().all()
    assert ((close >= dn - 1e-3) | ~traded).all().all()
    board = meta.loc[close.columns, "board"]
    wide = board.isin(["chinext", "star"]).to_numpy()
    # 10% main board; 20% boards never move more than 20% (+ cent rounding of the limit price)
    prev = close.ffill().shift(1).to_numpy()
    slack = np.abs(chg.to_numpy()) - 0.006 / prev
    assert np.nanmax(slack[:, ~wide]) < 0.1
    assert np.nanmax(slack[:, wide]) < 0.2
    # ChiNext before its 2020-08-24 reform would be 10%: tiny starts later, so 20% moves exist on wide boards
    assert np.nanmax(np.abs(chg.to_numpy()[:, wide])) > 0.1 + 0.006


def test_limit_days_and_one_word_boards(panels):
    close, up, dn = panels["close"], panels["up_limit"], panels["down_limit"]
    o, h, lo = panels["open"], panels["high"], panels["low"]
    at_up = close >= up - 0.005
    at_dn = close <= dn + 0.005
    oneword = at_up & (o == close) & (h == close) & (lo == close)
    traded = close.notna().sum().sum()
    assert 0.002 < at_up.sum().sum() / traded < 0.03
    assert 0.0005 < at_dn.sum().sum() / traded < 0.01
    assert oneword.sum().sum() >= 3
    # a one-word board trades far less than the stock usually does
    turn = panels["turnover"]
    ratio = np.nanmedian((turn / turn.median()).to_numpy()[oneword.to_numpy()])
    assert ratio < 0.5


def test_suspension_spells(panels):
    paused = panels["paused"]
    close, vol = panels["close"], panels["volume"]
    sus = paused == 1
    assert ((vol == 0) | ~sus).all().all()
    assert close[sus].isna().all().all()
    # spells: at least one stretch of 3+ consecutive paused sessions
    runs = 0
    for col in sus.columns:
        s = sus[col].astype(int).to_numpy()
        edges = np.flatnonzero(np.diff(np.r_[0, s, 0]))
        lengths = edges[1::2] - edges[::2]
        runs = max(runs, lengths.max() if lengths.size else 0)
    assert runs >= 3
    # the first close after a spell moves from the last close before it, within the limits
    chg = panels["change"]
    after = sus.shift(1, fill_value=False) & ~sus & close.notna()
    prev_close = close.ffill().shift(1)
    m = after.to_numpy()
    assert m.sum() >= 3
    implied = close.to_numpy()[m] / prev_close.to_numpy()[m] - 1
    assert np.allclose(implied, chg.to_numpy()[m], atol=1e-5)


def test_listings_and_delistings(tiny_market):
    spans = read_instruments(tiny_market, "all")
    cal = read_calendar(tiny_market)
    assert (spans["start"] > cal[0]).sum() >= 5       # IPOs during the span
    assert (spans["end"] < cal[-1]).sum() >= 2        # delistings
    close = read_panel(tiny_market, "close", list(spans["instrument"]))
    for _, row in spans[spans["end"] < cal[-1]].iterrows():
        assert close.loc[close.index > row["end"], row["instrument"]].isna().all()


def test_weights_sum_to_one_and_match_members(panels, tiny_market):
    cal = read_calendar(tiny_market)
    for band in ("csi300", "csi500", "csi1000"):
        w = panels[f"w_{band}"]
        assert np.allclose(w.sum(axis=1).to_numpy(), 1.0, atol=1e-5)
        spans = read_instruments(tiny_market, band)
        member = pd.DataFrame(False, index=cal, columns=w.columns)
        for _, r in spans.iterrows():
            member.loc[r["start"] : r["end"], r["instrument"]] = True
        assert ((w > 0) == member).all().all()
        # weights are float-cap weights of the members
        fm = panels["float_mcap"].where(member)
        assert np.allclose(w.where(member).to_numpy(), (fm.div(fm.sum(axis=1), axis=0)).to_numpy(), equal_nan=True, atol=2e-6)


def test_bands_are_cap_rank_bands_at_each_reconstitution(panels, tiny_market):
    import yaml

    cfg = yaml.safe_load((tiny_market / "meta" / "market.yaml").read_text())
    cal = read_calendar(tiny_market)
    mcap = panels["mcap"].astype(float)
    listed = mcap.notna()
    sessions = listed.cumsum().shift(1, fill_value=0)
    seasoned = listed.iloc[0].to_numpy()  # listed when the span starts: counts as seasoned
    sessions.loc[:, seasoned] = np.maximum(sessions.loc[:, seasoned], cfg["min_listed_sessions"])
    bands = cfg["index_bands"]
    recon = reconstitution_days(cal)
    assert len(recon) >= 6
    for t in recon:
        window = mcap.iloc[max(0, t - cfg["rank_window"]) : t]
        score = window.mean()
        eligible = listed.iloc[t] & (sessions.iloc[t] >= cfg["min_listed_sessions"])
        order = score[eligible].sort_values(ascending=False).index
        expect = {"csi300": set(order[: bands["csi300"]]),
                  "csi500": set(order[bands["csi300"] : bands["csi300"] + bands["csi500"]]),
                  "csi1000": set(order[bands["csi300"] + bands["csi500"] : sum(bands.values())])}
        for band, names in expect.items():
            got = set(panels[f"w_{band}"].columns[(panels[f"w_{band}"].iloc[t] > 0).to_numpy()])
            assert got == names, (band, cal[t])


def test_index_close_moves_with_weighted_members(panels, tiny_market):
    for band in ("csi300", "csi500", "csi1000"):
        code = INDEX_CODES[band]
        idx = read_panel(tiny_market, "close", [code])[code].astype(float)
        w = panels[f"w_{band}"].astype(float).shift(1)
        r = (panels["close"] / panels["close"].ffill().shift(1) - 1).fillna(0.0)
        implied = (w * r).sum(axis=1).iloc[1:]
        actual = idx.pct_change().iloc[1:]
        assert np.allclose(actual.to_numpy(), implied.to_numpy(), atol=2e-5)


def test_size_regimes(tiny_market):
    idx = read_panel(tiny_market, "close", ["SH000300", "SH000852"]).astype(float)

    def ret(code, a, b):
        s = idx[code].loc[a:b]
        return s.iloc[-1] / s.iloc[0] - 1

    # small caps beat large caps from 2021H2 to January 2024 ...
    assert ret("SH000852", "2021-07-01", "2024-01-19") > ret("SH000300", "2021-07-01", "2024-01-19")
    # ... then fall much more in the January-February 2024 crash, and rebound after it
    crash_small, crash_large = ret("SH000852", "2024-01-22", "2024-02-05"), ret("SH000300", "2024-01-22", "2024-02-05")
    assert crash_small < -0.10 and crash_small < crash_large - 0.08
    assert ret("SH000852", "2024-02-07", "2024-03-29") > 0.02


def test_planted_daily_alphas_have_expected_ic_sign(panels):
    close = panels["close"].astype(float)
    ret = close / close.ffill().shift(1) - 1
    fwd = close.shift(-10) / close - 1
    descriptors = {
        "reversal_5d": close / close.shift(5) - 1,
        "vol_20d": ret.rolling(20, min_periods=15).std(),
        "turn_20d": panels["turnover"].astype(float).rolling(20, min_periods=15).mean(),
        "weekly_reversal": close.shift(5) / close.shift(20) - 1,
    }
    for name, f in descriptors.items():
        ic = rank_ic(f.iloc[30:], fwd.iloc[30:], step=5)
        t = ic.mean() / ic.std() * np.sqrt(len(ic))
        assert ic.mean() < -0.01 and t < -2, (name, ic.mean(), t)


def test_intraday_factor_predicts_but_is_not_a_daily_factor(tiny_market, panels):
    cal_min = read_calendar(tiny_market, "1min")
    days = read_calendar(tiny_market)
    assert len(cal_min) == 240 * len(days)
    inst = list(panels["close"].columns)
    vol = read_panel(tiny_market, "volume", inst, freq="1min").to_numpy().reshape(len(days), 240, -1)
    cls = read_panel(tiny_market, "close", inst, freq="1min").to_numpy().reshape(len(days), 240, -1)
    opn = read_panel(tiny_market, "open", inst, freq="1min").to_numpy().reshape(len(days), 240, -1)
    r = np.log(cls / opn)
    v = vol - np.nanmean(vol, axis=1, keepdims=True)
    rr = r - np.nanmean(r, axis=1, keepdims=True)
    corr = np.nansum(v * rr, axis=1) / np.sqrt(np.nansum(v * v, axis=1) * np.nansum(rr * rr, axis=1))
    corr_vr = pd.DataFrame(corr, index=days, columns=inst).where(panels["close"].notna())
    factor = corr_vr.rolling(10, min_periods=8).mean()
    close = panels["close"].astype(float)
    fwd = close.shift(-10) / close - 1
    ic = rank_ic(factor.iloc[30:], fwd.iloc[30:], step=5)
    assert ic.mean() < -0.02 and ic.mean() / ic.std() * np.sqrt(len(ic)) < -2
    # ... and is close to uncorrelated with the daily OHLCV descriptors
    ret = close / close.ffill().shift(1) - 1
    daily = {"ret_5": close / close.shift(5) - 1, "std_20": ret.rolling(20).std(),
             "turn_20": panels["turnover"].astype(float).rolling(20).mean(),
             "range": (panels["high"] / panels["low"] - 1).rolling(10).mean()}
    for name, d in daily.items():
        c = factor.iloc[30:].rank(axis=1).corrwith(d.iloc[30:].rank(axis=1), axis=1).mean()
        assert abs(c) < 0.1, (name, c)


def test_minute_bars_aggregate_to_daily_bar(tiny_market, panels):
    days = read_calendar(tiny_market)
    inst = list(panels["close"].columns)[:40]
    mins = {f: read_panel(tiny_market, f, inst, freq="1min").to_numpy().reshape(len(days), 240, -1)
            for f in ("open", "high", "low", "close", "volume", "amount")}
    d = {f: panels[f][inst].to_numpy() for f in ("open", "high", "low", "close", "volume", "amount", "vwap")}
    traded = np.isfinite(d["close"])
    assert np.array_equal(mins["open"][:, 0][traded], d["open"][traded])
    assert np.array_equal(mins["close"][:, -1][traded], d["close"][traded])
    assert np.array_equal(np.nanmax(mins["high"], axis=1)[traded], d["high"][traded])
    assert np.array_equal(np.nanmin(mins["low"], axis=1)[traded], d["low"][traded])
    assert np.allclose(mins["volume"].sum(axis=1)[traded], d["volume"][traded], rtol=1e-5)
    assert np.allclose(mins["amount"].sum(axis=1)[traded], d["amount"][traded], rtol=1e-5)
    assert np.allclose(d["vwap"][traded], d["amount"][traded] / d["volume"][traded], rtol=1e-5)
    assert (d["vwap"][traded] <= d["high"][traded] * (1 + 1e-6)).all()
    assert (d["vwap"][traded] >= d["low"][traded] * (1 - 1e-6)).all()
    # suspended days (listed, no trade) have no minute prices
    suspended = ~traded & np.isfinite(panels["mcap"][inst].to_numpy())
    assert suspended.any()
    assert np.isnan(mins["close"].transpose(0, 2, 1)[suspended]).all()

def test_intraday_u_shape(tiny_market):
    days = read_calendar(tiny_market)
    inst = list(read_panel(tiny_market, "close").columns)[:40]
    vol = np.nan_to_num(read_panel(tiny_market, "volume", inst, freq="1min").to_numpy()).reshape(len(days), 240, -1)
    profile = vol.sum(axis=(0, 2))
    share = profile / profile.sum()
    assert share[:30].sum() > 0.18 and share[210:].sum() > 0.09
    assert share[:30].mean() > 1.5 * share[60:180].mean() and share[-10:].mean() > share[60:180].mean()
    cls = read_panel(tiny_market, "close", inst, freq="1min").to_numpy().reshape(len(days), 240, -1)
    r = np.abs(np.diff(np.log(cls), axis=1))
    prof_vol = np.nanmean(r, axis=(0, 2))
    assert prof_vol[:15].mean() > 1.3 * prof_vol[60:180].mean()


def test_threaded_minute_engine_gives_the_serial_bars(monkeypatch):
    """Rows split over threads and draws made ahead change nothing, to the bit (a suspended row included)."""
    from qlib_ext.data.synth.config import load_market_config
    from qlib_ext.data.synth.market import MINUTE_FIELDS, _MinuteEngine

    monkeypatch.setattr(_MinuteEngine, "MIN_ROWS", 0)
    icfg, n = load_market_config("tiny")["intraday"], 51
    rng = np.random.default_rng(3)
    o = 10 * np.exp(rng.normal(0, 0.01, n))
    c = o * np.exp(rng.normal(0, 0.02, n))
    rec = {"open": o, "close": c, "high": np.maximum(o, c) * 1.01, "low": np.minimum(o, c) * 0.99,
           "volume": rng.lognormal(12, 1, n), "_q": rng.normal(size=n)}
    rec["close"][7], rec["volume"][7] = np.nan, 0.0
    with _MinuteEngine(5, n, icfg, threads=1) as serial, _MinuteEngine(5, n, icfg, threads=2) as threaded:
        for t in range(3):
            (sa, a), (ta, b) = serial.day(rec, t, prefetch=True), threaded.day(rec, t, keep_bars=t != 1, prefetch=t < 2)
            np.testing.assert_array_equal(sa, ta)
            np.testing.assert_array_equal(sa, a["amount"].sum(axis=1))
            assert (b is None) == (t == 1)
            for f in MINUTE_FIELDS if b is not None else ():
                np.testing.assert_array_equal(a[f], b[f])
    assert np.isnan(a["close"][7]).all() and (a["volume"][7] == 0).all()
    assert np.isfinite(a["close"][:7]).all()
