"""The real fixture imported once (session scope) and read back through ``qlib.data.D``: the README's sanity
facts, counts cross-checked against the source files with pandas, and ``check_dataset`` passing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qlib_ext.data.check import check_dataset
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel


@pytest.fixture(scope="session")
def real_import(realdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("imp_real") / "qlib"
    report = import_dataset(realdata, out, progress=False)
    return out, report


@pytest.fixture(scope="session")
def D(real_import, tmp_path_factory):
    import qlib_ext

    qlib_ext.init(real_import[0], mlruns=tmp_path_factory.mktemp("imp_real_mlruns"))
    from qlib.data import D

    return D


def _one(D, inst: str, expr: str, day: str) -> float:
    df = D.features([inst], [expr], start_time=day, end_time=day)
    assert len(df) == 1, (inst, expr, day, df)
    return float(df.iloc[0, 0])


def test_report(real_import, realdata):
    _, rep = real_import
    assert rep.ok, rep.render()
    assert {w.check for w in rep.warnings} == {"adj_factor_step", "unknown_code", "no_shares"}
    daily_codes = set(pd.read_parquet(realdata / "daily.parquet", columns=["ts_code"])["ts_code"])
    share_codes = set(pd.read_parquet(realdata / "shares.parquet", columns=["ts_code"])["ts_code"])
    no_shares = next(w for w in rep.warnings if w.check == "no_shares")    # counted per file (issue 12)
    assert no_shares.count == len(daily_codes - share_codes) and no_shares.file == "shares.parquet"
    assert rep.stats["unknown codes in index_member.parquet"] == 53
    assert rep.stats["unknown codes in index_weight.parquet"] == 8
    assert "vol in shares, amount in CNY (detected" in rep.units["daily.parquet"]
    assert "weights in percent" in rep.units["index_weight.parquet"]
    meta = json.loads((real_import[0] / "meta" / "dataset.json").read_text())
    assert meta["weights"]["csi500"] == meta["weights"]["csi1000"] == "approximated: float-cap weights of members"
    assert "62 snapshots" in meta["weights"]["csi300"]
    daily = pd.read_parquet(realdata / "daily.parquet", columns=["amount"])
    assert rep.stats["daily rows"] == len(daily)
    assert rep.stats["vwap_fallback_rows"] == int(daily["amount"].isna().sum())


def test_glitches_with_a_factor_step_are_flagged(real_import, realdata):
    """glitches.csv days where the factor steps with no ex-date gap are flagged; flags stay a small share of steps."""
    flagged = set(real_import[1].stats["adj_factor steps flagged"])
    for known in ("600313.SH 20210118", "601686.SH 20220127", "002759.SZ 20220330"):
        assert known in flagged
    d = pd.read_parquet(realdata / "daily.parquet", columns=["ts_code", "adj_factor"])
    steps = int((d["adj_factor"] != d.groupby("ts_code")["adj_factor"].shift()).sum() - d["ts_code"].nunique())
    assert len(flagged) < 0.03 * steps


def test_sanity_facts_through_qlib(D):
    assert _one(D, "SH600519", "$close / $factor", "2024-01-02") == pytest.approx(1685.01, abs=2e-3)
    assert _one(D, "SH600519", "$open / $factor", "2024-01-02") == pytest.approx(1715.00, abs=2e-3)
    assert _one(D, "SH600519", "$volume * $factor", "2024-01-02") == pytest.approx(3215644, rel=1e-6)
    assert _one(D, "SH600519", "$amount", "2024-01-02") == pytest.approx(5440082548.08, rel=1e-6)
    assert _one(D, "SZ000001", "$close / $factor", "2024-01-02") == pytest.approx(9.21, abs=1e-4)
    assert _one(D, "SH600519", "$change", "2023-06-30") == pytest.approx(0.0019, abs=5e-5)
    assert _one(D, "SH600519", "$close / Ref($close, 1) - 1", "2023-06-30") == pytest.approx(0.0019, abs=5e-5)
    assert _one(D, "SH000852", "$change", "2024-02-05") == pytest.approx(-0.061556, abs=1e-6)
    assert _one(D, "SH000852", "$close", "2024-02-05") == pytest.approx(4293.069, abs=1e-3)
    assert _one(D, "SH000300", "$change", "2024-02-05") == pytest.approx(0.00654, abs=1e-5)
    assert _one(D, "SH000905", "$change", "2024-02-05") == pytest.approx(-0.022563, abs=1e-6)
    assert _one(D, "SH600519", "$industry", "2024-01-02") == 340000


def test_ex_dividend_return_matches_the_source(D, realdata):
    src = pd.read_parquet(realdata / "daily.parquet", filters=[("ts_code", "==", "600519.SH")]).set_index("trade_date")
    adj = src["close"] * src["adj_factor"]
    want = adj["20230630"] / adj["20230629"] - 1
    assert _one(D, "SH600519", "$change", "2023-06-30") == pytest.approx(want, abs=1e-6)
    assert src.loc["20230630", "adj_factor"] != src.loc["20230629", "adj_factor"]


def test_members_per_day_match_the_source(real_import, realdata):
    out = real_import[0]
    days = read_calendar(out)
    mem = pd.read_parquet(realdata / "index_member.parquet")
    have = {c[2:] + "." + c[:2] for c in read_instruments(out)["instrument"]}
    for code, market, n in (("000300.SH", "csi300", 300), ("000905.SH", "csi500", 500), ("000852.SH", "csi1000", 1000)):
        m = mem[mem["index_code"] == code]
        d = np.asarray(days.strftime("%Y%m%d"), dtype=object)[:, None]
        in_force = (m["in_date"].to_numpy() <= d) & (m["out_date"].isna().to_numpy() | (d <= m["out_date"].fillna("").to_numpy()))
        assert (in_force.sum(axis=1) == n).all(), market          # the source itself has n members a day
        known = in_force[:, m["con_code"].isin(have).to_numpy()].sum(axis=1)
        spans = read_instruments(out, market)
        ours = np.array([((spans["start"] <= day) & (spans["end"] >= day)).sum() for day in days])
        np.testing.assert_array_equal(ours, known, err_msg=market)


def test_weights_sum_to_one_and_follow_the_snapshots(real_import, realdata):
    out = real_import[0]
    stocks = sorted(read_instruments(out)["instrument"].unique())
    for market in ("csi300", "csi500", "csi1000"):
        w = read_panel(out, f"w_{market}", stocks)
        np.testing.assert_allclose(w.sum(axis=1, min_count=1).to_numpy(), 1.0, atol=1e-5, err_msg=market)
    src = pd.read_parquet(realdata / "index_weight.parquet")
    snap = src[src["trade_date"] == "20240329"].assign(sym=lambda d: d["con_code"].str[-2:] + d["con_code"].str[:6])
    snap = snap[snap["sym"].isin(stocks)]
    want = (snap.set_index("sym")["weight"] / snap["weight"].sum()).sort_values(ascending=False)
    got = read_panel(out, "w_csi300", stocks).loc["2024-03-29"].dropna()
    got = got[got > 0].sort_values(ascending=False)
    assert list(got.index[:3]) == ["SH600519", "SZ300750", "SH601318"]
    np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), rtol=1e-5)


def test_minute_bars_aggregate_to_the_daily_bar(D):
    """The 09:30 auction bar is merged into 09:31, so volume, open and close still aggregate to the daily bar."""
    exprs = ["$volume * $factor", "$close / $factor", "$open / $factor"]
    m = D.features(["SZ000001"], exprs, start_time="2022-03-01 09:31:00", end_time="2022-04-08 15:00:00", freq="1min")
    d = D.features(["SZ000001"], exprs, start_time="2022-03-01", end_time="2022-04-08")
    assert len(m) == 27 * 240 and len(d) == 27
    day = m.index.get_level_values("datetime").normalize()
    np.testing.assert_allclose(m.iloc[:, 0].groupby(day.to_numpy()).sum().to_numpy(), d.iloc[:, 0].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(m.iloc[:, 1].groupby(day.to_numpy()).last().to_numpy(), d.iloc[:, 1].to_numpy(), atol=2e-4)
    np.testing.assert_allclose(m.iloc[:, 2].groupby(day.to_numpy()).first().to_numpy(), d.iloc[:, 2].to_numpy(), atol=2e-4)


def test_imported_fixture_passes_check_dataset(real_import):
    rep = check_dataset(real_import[0])
    assert rep.ok, rep.render()
    assert not rep.warnings, rep.render()
