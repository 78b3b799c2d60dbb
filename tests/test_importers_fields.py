"""Field conventions on a hand-made tushare-like source: adjustment factor, limits by board/ST/reform date,
suspensions, vwap fallback, factor-step checks, industry schemes, weights; expected values computed here."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.calendar import trading_days
from qlib_ext.data.check import CORE_FIELDS, check_dataset
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel

DAYS = trading_days("2020-08-17", "2020-09-04")          # ChiNext's 20% limit starts 2020-08-24
CODES = ["600001.SH", "600002.SH", "300001.SZ", "688001.SH", "000001.SZ"]
EX = 7                                                   # 600001.SH ex-dividend session index


def _daily(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for code in CODES:
        px = 10.0
        for t, day in enumerate(DAYS):
            if code == "600002.SH" and t == 4:
                continue                                  # suspended: no row
            factor = 1.0
            if code == "600001.SH":
                factor = 2.0 if t < EX else 2.1           # arbitrary scale, 5% step on the ex-date
                if t == EX:
                    px = round(px * 2.0 / 2.1, 2)         # the ex-date reference price
            close = round(px * (1 + rng.uniform(-0.04, 0.04)), 2)
            o = round(px * (1 + rng.uniform(-0.01, 0.01)), 2)
            hi, lo = max(o, close) + 0.03, min(o, close) - 0.03
            vol = 0.0 if (code == "600002.SH" and t == 9) else float(rng.integers(1000, 5000) * 100)
            if vol == 0:                                  # a no-trade row repeats the previous close
                o = hi = lo = close = px
            amount = np.nan if code == "000001.SZ" else vol * (o + close) / 2
            rows.append((code, day.strftime("%Y%m%d"), o, hi, lo, close, vol, amount, factor,
                         1 if code == "600002.SH" else 0))
            px = close if vol else px
    return pd.DataFrame(rows, columns=["ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount",
                                       "adj_factor", "is_st"])


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("imp_fields") / "src"
    src.mkdir()
    _daily(np.random.default_rng(7)).to_csv(src / "daily.csv", index=False)
    d0 = DAYS[0].strftime("%Y%m%d")
    pd.DataFrame({"ts_code": CODES, "trade_date": [DAYS[3].strftime("%Y%m%d")] * 5,
                  "float_share": [1e8, 2e8, 3e8, 4e8, 5e8], "total_share": [2e8, np.nan, 6e8, 8e8, 1e9]}
                 ).to_csv(src / "shares.csv", index=False)
    pd.DataFrame({"ts_code": ["600001.SH", "600001.SH", "600002.SH", "300001.SZ", "688001.SH", "000001.SZ"],
                  "in_date": ["20140101", "20200826", d0, d0, d0, "20200820"],
                  "out_date": ["20200825", None, None, None, None, None],
                  "l1_code": ["210000", "740000", "801780.SI", "220000", "710000", "480000"],
                  "l1_name": ["采掘", "煤炭", "银行", "化工", "计算机", "银行"]}).to_csv(src / "industry.csv", index=False)
    pd.DataFrame({"index_code": "000300.SH", "con_code": ["600001.SH", "600002.SH", "300001.SZ"],
                  "trade_date": d0, "weight": [50.0, 30.0, 20.0]}).to_csv(src / "index_weight.csv", index=False)
    pd.DataFrame({"index_code": "000300.SH", "con_code": ["600001.SH", "300001.SZ", "688001.SH"],
                  "in_date": d0, "out_date": None}).to_csv(src / "index_member.csv", index=False)
    return src


@pytest.fixture(scope="module")
def imported(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp_fields_out") / "qlib"
    return out, import_dataset(source, out, progress=False)


def _p(root: Path, field: str) -> pd.DataFrame:
    syms = [c[-2:] + c[:6] for c in CODES]
    return read_panel(root, field, syms).set_axis(CODES, axis=1).astype(float)


def test_factor_normalised_to_the_first_row_and_prices_adjusted(source, imported):
    out, rep = imported
    src = pd.read_csv(source / "daily.csv", dtype={"trade_date": str}).set_index(["ts_code", "trade_date"])
    f, close, vol = _p(out, "factor"), _p(out, "close"), _p(out, "volume")
    assert f["600001.SH"].iloc[0] == 1.0 and f["600001.SH"].iloc[EX] == pytest.approx(1.05, rel=1e-6)
    raw = src.loc["600001.SH"]
    np.testing.assert_allclose((close["600001.SH"] / f["600001.SH"]).to_numpy(), raw["close"].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose((vol["600001.SH"] * f["600001.SH"]).to_numpy(), raw["vol"].to_numpy(), rtol=1e-6)
    adj = raw["close"] * raw["adj_factor"]
    np.testing.assert_allclose(_p(out, "change")["600001.SH"].iloc[1:].to_numpy(),
                               (adj / adj.shift() - 1).iloc[1:].to_numpy(), atol=1e-6)


def _limit(prev: float, pct: str) -> tuple[float, float]:
    p = Decimal(f"{prev:.2f}")
    q = Decimal("0.01")
    return (float((p * (1 + Decimal(pct))).quantize(q, ROUND_HALF_UP)),
            float((p * (1 - Decimal(pct))).quantize(q, ROUND_HALF_UP)))


def test_limits_by_board_st_and_reform_date_on_ex_adjusted_close(source, imported):
    out, _ = imported
    src = pd.read_csv(source / "daily.csv", dtype={"trade_date": str})
    up, dn, f = _p(out, "up_limit"), _p(out, "down_limit"), _p(out, "factor")
    pct = {"600001.SH": lambda d: "0.1", "600002.SH": lambda d: "0.05", "688001.SH": lambda d: "0.2",
           "000001.SZ": lambda d: "0.1", "300001.SZ": lambda d: "0.2" if d >= "20200824" else "0.1"}
    n = 0
    for code, g in src[src["vol"] > 0].groupby("ts_code"):
        prev = None
        for _, r in g.iterrows():
            day = pd.Timestamp(r["trade_date"])
            if prev is not None:
                p_close, p_factor = prev
                want = _limit(p_close * p_factor / r["adj_factor"], pct[code](r["trade_date"]))
                got = (up.loc[day, code] / f.loc[day, code], dn.loc[day, code] / f.loc[day, code])
                if np.isfinite(got[0]):
                    assert got == pytest.approx(want, abs=1e-4), (code, r["trade_date"])
                    n += 1
                else:                                      # dropped only where the day's range exceeds the rule
                    assert r["high"] > want[0] + 0.005 or r["low"] < want[1] - 0.005
            prev = (r["close"], r["adj_factor"])
    assert n > 50
    assert up.loc[DAYS[EX], "600001.SH"] / f.loc[DAYS[EX], "600001.SH"] == pytest.approx(
        _limit(src.query("ts_code == '600001.SH'")["close"].iloc[EX - 1] * 2.0 / 2.1, "0.1")[0], abs=1e-4)


def test_suspensions_vwap_fallback_and_shares(imported):
    out, rep = imported
    paused, close, vol = _p(out, "paused"), _p(out, "close"), _p(out, "volume")
    for t in (4, 9):                                       # no row / a row with vol 0
        assert paused.iloc[t]["600002.SH"] == 1 and np.isnan(close.iloc[t]["600002.SH"]) and vol.iloc[t]["600002.SH"] == 0
    assert paused.drop(index=paused.index[[4, 9]])["600002.SH"].eq(0).all()
    vwap, o, h, lo = (_p(out, k)["000001.SZ"] for k in ("vwap", "open", "high", "low"))
    np.testing.assert_allclose(vwap, (o + h + lo + close["000001.SZ"]) / 4, rtol=1e-6)
    assert rep.stats["vwap_fallback_rows"] == len(DAYS)
    fl, tot, turn = _p(out, "float_shares"), _p(out, "total_shares"), _p(out, "turnover")
    assert (fl["300001.SZ"] == 3e8).all()                   # one snapshot on day 3 fills both ways (look-ahead)
    assert (tot["600002.SH"] == 2e8).all()                  # no total: falls back to float
    np.testing.assert_allclose(turn["300001.SZ"], vol["300001.SZ"] * _p(out, "factor")["300001.SZ"] / 3e8, rtol=1e-6)
    np.testing.assert_allclose(_p(out, "mcap")["688001.SH"], close["688001.SH"] * 8e8, rtol=1e-6)


def test_industry_single_sw2021_scheme(imported):
    out, rep = imported
    ind = _p(out, "industry")
    assert (ind["600001.SH"] == 740000).all()               # SW2014 210000 takes the next SW2021 code
    assert (ind["600002.SH"] == 480000).all()               # tushare 801780.SI mapped by its name
    assert (ind["300001.SZ"] == 220000).all()               # shared SW2014/SW2021 code kept
    assert (ind["000001.SZ"] == 480000).all()               # days before its first span: filled from it
    assert rep.stats["industry: listed days without a classification in force (filled from the nearest)"] == \
        DAYS.searchsorted(pd.Timestamp("2020-08-20"))


def test_weights_renormalised_over_members(imported):
    out, rep = imported
    w = _p(out, "w_csi300")
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w["600002.SH"] == 0).all()                      # weighted in the snapshot but not a member
    # 688001.SH is a member without a snapshot weight: it gets the median member weight (of 50 and 20 -> 35)
    np.testing.assert_allclose(w.iloc[0][["600001.SH", "300001.SZ", "688001.SH"]].to_numpy(),
                               np.array([50, 20, 35]) / 105, rtol=1e-6)
    assert any(i.check == "weight_missing" for i in rep.warnings)
    assert read_instruments(out, "csi300")["instrument"].tolist() == ["SH600001", "SH688001", "SZ300001"]


def test_dataset_passes_check(imported):
    out, _ = imported
    assert read_calendar(out).equals(pd.DatetimeIndex(DAYS))
    rep = check_dataset(out, required_fields=CORE_FIELDS)
    assert rep.ok, rep.render()


def test_late_factor_step_is_flagged_and_pre_close_makes_it_exact(source, tmp_path):
    d = pd.read_csv(source / "daily.csv", dtype={"trade_date": str})
    i = d.index[(d["ts_code"] == "600001.SH")]
    late = d.copy()
    late.loc[i[EX], "adj_factor"] = 2.0                     # the step lands one session late ...
    k = i[EX + 1]                                           # ... on a day that opens at the previous close
    late.loc[k, "open"] = late.loc[i[EX], "close"]
    late.loc[k, "high"] = max(late.loc[k, "high"], late.loc[k, "open"])
    late.loc[k, "low"] = min(late.loc[k, "low"], late.loc[k, "open"])
    src = tmp_path / "late"
    src.mkdir()
    late.to_csv(src / "daily.csv", index=False)
    rep = import_dataset(src, tmp_path / "o1", progress=False)
    assert "600001.SH " + DAYS[EX + 1].strftime("%Y%m%d") in rep.stats["adj_factor steps flagged"]
    # with the exchange's pre_close the check is exact and names both wrong days
    pre = late["close"].groupby(late["ts_code"]).shift()
    good_f = d["adj_factor"] / d.groupby("ts_code")["adj_factor"].shift()
    late["pre_close"] = (pre / good_f).round(2)
    late.to_csv(src / "daily.csv", index=False)
    rep = import_dataset(src, tmp_path / "o2", progress=False)
    flagged = rep.stats["adj_factor steps flagged"]
    assert flagged == [f"600001.SH {DAYS[t]:%Y%m%d}" for t in (EX, EX + 1)]
    with pytest.raises(Exception, match=r"\[check adj_factor_step\]"):
        import_dataset(src, tmp_path / "o3", strict=True, progress=False)


def test_start_end_clip_rows(source, tmp_path):
    rep = import_dataset(source, tmp_path / "o", start="2020-08-20", end="2020-09-01", progress=False)
    cal = read_calendar(tmp_path / "o")
    assert cal[0] == pd.Timestamp("2020-08-20") and cal[-1] == pd.Timestamp("2020-09-01")
    assert rep.stats["daily rows outside start..end (skipped)"] > 0
