"""Minute sources and the [rows x 240] grid: 09:30 auction merge, start labels, tushare files, real bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.bin_io import DatasetWriter
from qlib_ext.data.calendar import minute_calendar, trading_days
from qlib_ext.data.panel import read_panel
from qlib_ext.ops.build import build_minute_factors
from qlib_ext.ops.grid import MERGE_OPEN, OFF, minute_slots
from qlib_ext.ops.library import MF_FIELDS
from qlib_ext.ops.sources import TushareSource, qlib_code


@pytest.fixture()
def calendar_only(tmp_path):
    """A dataset with only a daily calendar (2022): enough to place tushare minute files on."""
    with DatasetWriter(tmp_path / "ds") as w:
        w.write_calendar(trading_days("2022-01-01", "2022-12-31"), "day")
    return tmp_path / "ds"


def tushare_frame(code: str, days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """241 bars a day (09:30 auction + 240), tushare column names."""
    times = []
    for d in days:
        times += [d + pd.Timedelta("09:30:00")] + list(minute_calendar(pd.DatetimeIndex([d])))
    n = len(times)
    close = 10 + np.cumsum(rng.standard_normal(n) * 0.01)
    opn = np.r_[close[0], close[:-1]]
    vol = rng.uniform(1e3, 1e4, n).round()
    return pd.DataFrame({"ts_code": code, "trade_time": [t.strftime("%Y-%m-%d %H:%M:%S") for t in times],
                         "open": opn, "high": np.maximum(opn, close) + 0.01, "low": np.minimum(opn, close) - 0.01,
                         "close": close, "vol": vol, "amount": vol * close})


def test_minute_slots_labels():
    day = pd.Timestamp("2022-03-01")
    end_labels = minute_calendar(pd.DatetimeIndex([day]))
    assert (minute_slots(end_labels) == np.arange(240)).all()
    start_labels = end_labels - pd.Timedelta("1min")                 # Qlib cn_1min style: 09:30 .. 14:59
    assert (minute_slots(start_labels) == np.arange(240)).all()
    extra = pd.DatetimeIndex([day + pd.Timedelta("09:30:00"), day + pd.Timedelta("09:25:00"), day + pd.Timedelta("15:00:00")])
    assert list(minute_slots(extra)) == [MERGE_OPEN, OFF, 239]
    assert qlib_code("000001.SZ") == "SZ000001" and qlib_code("600519.sh") == "SH600519"


def test_tushare_directory_with_auction_merge(calendar_only, tmp_path):
    rng = np.random.default_rng(1)
    days = trading_days("2022-03-01", "2022-03-04")
    a, b = tushare_frame("000001.SZ", days, rng), tushare_frame("600000.SH", days[1:], rng)
    src_dir = tmp_path / "minutes"
    src_dir.mkdir()
    a.to_csv(src_dir / "000001.csv", index=False)
    b.to_parquet(src_dir / "600000.parquet")
    src = TushareSource(src_dir, calendar_only)
    assert src.instruments == ["SH600000", "SZ000001"]
    d0 = int(src.days.get_loc(days[0]))
    bars = src.bars(["SZ000001", "SH600000"], d0, d0 + 4)
    day0 = a.iloc[:241]
    auction, first = day0.iloc[0], day0.iloc[1]
    assert bars["open"][0, 0, 0] == pytest.approx(auction["open"])
    assert bars["close"][0, 0, 0] == pytest.approx(first["close"])
    assert bars["high"][0, 0, 0] == pytest.approx(max(auction["high"], first["high"]))
    assert bars["volume"][0, 0, 0] == pytest.approx(auction["vol"] + first["vol"])
    assert bars["amount"][0, 0, 0] == pytest.approx(auction["amount"] + first["amount"], rel=1e-6)
    np.testing.assert_allclose(bars["close"][0, 0, 1:], day0["close"].to_numpy()[2:], rtol=1e-6)
    assert np.isnan(bars["close"][1, 0]).all() and np.isfinite(bars["close"][1, 1:]).all()

    fields = build_minute_factors(calendar_only, source=str(src_dir), progress=False)
    panel = read_panel(calendar_only, "mf_vshare_open30", ["SZ000001", "SH600000"])
    assert fields == MF_FIELDS and panel.notna().sum().tolist() == [4, 3]


def test_missing_column_named(calendar_only, tmp_path):
    df = tushare_frame("000001.SZ", trading_days("2022-03-01", "2022-03-01"), np.random.default_rng(0)).drop(columns="amount")
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    src = TushareSource(path, calendar_only)
    with pytest.raises(ValueError, match=r"bad.parquet.*amount"):
        src.bars(["SZ000001"], 0, 240)


def test_real_minute_bars_give_sane_factors(realdata, calendar_only):
    path = realdata / "minute_000001.parquet"
    build_minute_factors(calendar_only, source=str(path), progress=False)
    f = {name: read_panel(calendar_only, name, ["SZ000001"])["SZ000001"].dropna() for name in MF_FIELDS}
    assert all(len(v) == 27 for v in f.values())                         # 27 sessions, none lost
    assert all(np.isfinite(v).all() for v in f.values())
    assert f["mf_rvol"].between(0.002, 0.08).all()                       # daily realised vol of a big bank
    assert f["mf_rkurt"].gt(1).all() and f["mf_downvol"].between(0, 1).all()
    assert f["mf_trend"].between(-1, 1).all() and f["mf_corr_vr"].between(-1, 1).all()
    assert f["mf_vhhi"].between(1 / 240, 0.2).all()
    # U-shaped intraday volume (SPEC 3.2: 25.6 % first 30 min / 12.3 % last 30 min for 000001.SZ)
    assert 0.15 < f["mf_vshare_open30"].mean() < 0.40 and 0.05 < f["mf_vshare_close30"].mean() < 0.25
    assert f["mf_vshare_open30"].mean() > f["mf_vshare_close30"].mean()
    raw = pd.read_parquet(path)
    day = raw[raw["trade_time"].str.startswith("2022-03-01")].set_index("trade_time")
    at = day["close"].get
    open_auction = day.loc["2022-03-01 09:30:00", "open"]                # the auction's open is the day's open
    assert f["mf_ret_open30"].iloc[0] == pytest.approx(at("2022-03-01 10:00:00") / open_auction - 1, abs=1e-6)
    assert f["mf_ret_close30"].iloc[0] == pytest.approx(at("2022-03-01 15:00:00") / at("2022-03-01 14:30:00") - 1, abs=1e-6)
