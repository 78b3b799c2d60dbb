"""The real A-share fixture end to end: import -> ``check_dataset`` -> risk store -> minute factors from
the 1-minute bins -> a short CSI300 enhancement backtest on the real, point-in-time CSI300 weights.

Numbers are cross-checked against the fixture's own Parquet files read with pandas (minute bars of
000001.SZ, ``index_weight``, ``index_member``, ``index_daily``), not against our readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qlib.backtest import backtest

import qlib_ext
from qlib_ext.backtest import report_exchange_config
from qlib_ext.data.check import check_dataset
from qlib_ext.data.importers import import_dataset
from qlib_ext.data.panel import read_calendar, read_instruments, read_panel
from qlib_ext.ops.build import build_minute_factors
from qlib_ext.risk import build_risk
from qlib_ext.strategy import IndexEnhancementStrategy

START, END = "2024-01-02", "2024-03-28"   # the backtest ends before the last session (Qlib reads the next one)


def qlib_code(ts_code: str) -> str:
    """``600519.SH`` -> ``SH600519`` (the dataset's instrument names)."""
    num, exch = ts_code.split(".")
    return exch + num


@pytest.fixture(scope="module")
def root(realdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("rd_e2e") / "qlib"
    report = import_dataset(realdata, out, progress=False)
    assert report.ok, report.render()
    return out


@pytest.fixture(scope="module")
def store(root):
    return build_risk(root, out=root.parent / "risk", export_qlib=False, progress=False)


def test_imported_dataset_passes_the_checks(root):
    rep = check_dataset(root)
    assert rep.ok and not rep.errors, rep.render()
    meta = json.loads((root / "meta" / "dataset.json").read_text())
    assert "62 snapshots" in meta["weights"]["csi300"]
    assert meta["weights"]["csi500"].startswith("approximated")


def test_risk_store_size_on_real_caps(root, store):
    """Size = standardised log cap (cap-weighted mean 0, equal-weighted std 1); CSI300 members lean large."""
    from qlib_ext.risk.store import load_exposures

    day = pd.Timestamp("2024-03-28")
    size = load_exposures(store, start=day, end=day).xs(day, level="datetime")["size"]
    mcap = read_panel(root, "mcap").loc[day].reindex(size.index)
    ok = size.notna() & mcap.notna()
    assert ok.sum() > 2000
    assert np.average(size[ok], weights=mcap[ok]) == pytest.approx(0.0, abs=1e-3)
    assert size[ok].std(ddof=0) == pytest.approx(1.0, abs=1e-3)
    assert size[ok].rank().corr(mcap[ok].rank()) > 0.99
    w = read_panel(root, "w_csi300").loc[day]
    members = w.index[w > 0]
    assert size.reindex(members).notna().all()          # every weighted member has an exposure
    assert size.reindex(members).mean() > size[ok].mean() + 1.5


def test_minute_factors_from_the_bins(root, realdata):
    fields = build_minute_factors(root, source="bins", progress=False)
    assert "mf_rvol" in fields and "mf_downvol" in fields
    bars = pd.read_parquet(realdata / "minute_000001.parquet")
    bars["day"] = pd.to_datetime(bars["trade_time"].str[:10])
    minute_days = pd.DatetimeIndex(sorted(bars["day"].unique()))
    assert len(minute_days) == 27
    for f in fields:
        v = read_panel(root, f, ["SZ000001"])["SZ000001"]
        assert np.isfinite(v.loc[minute_days]).all(), f
        assert v.drop(minute_days).isna().all(), f       # no minute bars -> no value, never a fill

    # independent: minute returns from the raw bars, the first against the day's (auction) open
    r2_all, r2_down = {}, {}
    for day, g in bars.groupby("day"):
        ref = np.r_[g["open"].iloc[0], g["close"].iloc[1:].to_numpy()]  # 09:30 bar merged into 09:31
        r = ref[1:] / ref[:-1] - 1
        r2_all[day], r2_down[day] = (r ** 2).sum(), (r[r < 0] ** 2).sum()
    r2_all, r2_down = pd.Series(r2_all), pd.Series(r2_down)
    rvol = read_panel(root, "mf_rvol", ["SZ000001"])["SZ000001"].loc[minute_days]
    down = read_panel(root, "mf_downvol", ["SZ000001"])["SZ000001"].loc[minute_days]
    np.testing.assert_allclose(rvol, np.sqrt(r2_all), rtol=1e-4)
    np.testing.assert_allclose(down, r2_down / r2_all, rtol=1e-4, atol=1e-6)


def reversal_pred(close: pd.DataFrame) -> pd.DataFrame:
    """A pred.pkl-shaped signal: minus the 5-day return."""
    pred = (-(close / close.shift(5) - 1)).stack().rename("score").to_frame()
    pred.index.names = ["datetime", "instrument"]
    return pred


def csi300_weights(realdata, day: pd.Timestamp, listed: set[str]) -> pd.Series:
    """Weights on ``day`` from the fixture: latest snapshot on or before it, over the day's members that
    have prices, renormalised to 1."""
    w = pd.read_parquet(realdata / "index_weight.parquet")
    w["trade_date"] = pd.to_datetime(w["trade_date"])
    snap = w[w["trade_date"] == w.loc[w["trade_date"] <= day, "trade_date"].max()]
    m = pd.read_parquet(realdata / "index_member.parquet")
    m = m[m["index_code"] == "000300.SH"]
    d = day.strftime("%Y%m%d")
    members = set(m.loc[(m["in_date"] <= d) & (m["out_date"].isna() | (m["out_date"] >= d)), "con_code"])
    s = snap[snap["con_code"].isin(members)].set_index("con_code")["weight"]
    s.index = s.index.map(qlib_code)
    s = s[s.index.isin(listed)]
    return s / s.sum()


def test_csi300_enhancement_on_real_weights(root, store, realdata, tmp_path):
    close = read_panel(root, "close").loc["2023-11-01":END]
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    strategy = IndexEnhancementStrategy(signal=reversal_pred(close), benchmark="csi300", universe="csiall",
                                        risk_store=str(store), rebalance_days=5)
    exchange = report_exchange_config(START, END)
    executor = {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": True}}
    metrics, _ = backtest(start_time=START, end_time=END, strategy=strategy, executor=executor,
                          benchmark="SH000300", account=1e9, exchange_kwargs={"exchange": exchange})
    report = metrics["1day"][0]
    cal = read_calendar(root)
    days = cal[(cal >= START) & (cal <= END)]
    assert report.index.equals(days)

    # the benchmark series is the real CSI300 (index_daily.parquet), day by day
    idx = pd.read_parquet(realdata / "index_daily.parquet")
    idx = idx[idx["ts_code"] == "000300.SH"].set_index(pd.to_datetime(idx.loc[idx["ts_code"] == "000300.SH",
                                                                                  "trade_date"]))
    np.testing.assert_allclose(report["bench"], (idx["close"] / idx["pre_close"] - 1).loc[days], atol=1e-5)

    # every rebalance solved (optimal, or relaxed with the slack recorded), weekly, and it trades
    diag = strategy.diagnostics()
    assert diag["status"].isin(["optimal", "relaxed"]).all(), diag[["status", "notes"]]
    assert len(diag) == len(range(0, len(days), 5)) and diag.index[0] == days[0]
    slack = diag["relaxed"].map(json.loads)
    assert ((diag["status"] == "relaxed") == slack.map(bool)).all()
    assert (report["turnover"] > 0).sum() >= len(diag) - 1 and diag["n_orders"].iloc[1:].min() > 0
    cap = 0.2 + slack.map(lambda s: s.get("Turnover", 0.0))
    assert (diag["turnover"].iloc[1:] <= cap.iloc[1:] + 1e-7).all()
    assert diag["turnover"].iloc[1:].mean() > 0.05

    # b = the fixture's CSI300 weights on the signal day; the constituent floor and 1% band hold on w
    w = strategy.log.weights_frame()
    listed = set(read_instruments(root)["instrument"])
    for day, row in diag.iterrows():
        wd = w.xs(day, level="datetime")
        expect = csi300_weights(realdata, row["signal_date"], listed)
        b = wd["benchmark"][wd["benchmark"] > 0]
        assert set(b.index) == set(expect.index) and len(b) >= 290, day
        np.testing.assert_allclose(b.sort_index(), expect.sort_index(), atol=2e-6, err_msg=str(day))
        floor = 0.8 - slack[day].get("ConstituentFloor", 0.0) - 1e-7
        assert row["constituent_weight"] == pytest.approx(wd.loc[b.index, "weight"].sum(), abs=1e-7)
        assert row["constituent_weight"] >= floor, day
        free = ~(wd["suspended"] | wd["limit_up"] | wd["limit_down"])
        band = 0.01 + slack[day].get("StockDeviation", 0.0) + 1e-7
        assert ((wd["weight"] - wd["benchmark"]).abs()[free] <= band).all(), day
    e = report["return"] - report["bench"]
    assert np.isfinite(e).all() and e.std() > 0


#: The CI run of the documented real preset: the template's LightGBM (not the GRUs: minutes on 2 cores),
#: one benchmark (CSI300, the fixture's real weights), 2024Q1 as the backtest, train/valid fitted before it.
CI_PRESET = """\
base: real
benchmarks: [csi300]
signal:
  workflow: null
  auto: {train_sessions: 122, min_train: 122, valid_sessions: 61}
backtest: ["2024-01-02", "2024-03-28"]
"""


@pytest.mark.e2e
def test_qlib_ext_run_on_the_imported_fixture_with_the_real_preset(root, tmp_path, capsys):
    """`qlib-ext run --data <imported fixture> --preset real` (a short window) completes: the preflight's
    windows and decisions are printed, the headline names the dataset and lists what the run could not do."""
    import os
    import shutil

    from mlflow.tracking import MlflowClient

    from qlib_ext.cli import main

    data = tmp_path / "data"
    shutil.copytree(root, data, copy_function=os.symlink, ignore=shutil.ignore_patterns("risk"))
    preset = tmp_path / "ci.yaml"
    preset.write_text(CI_PRESET)
    out = tmp_path / "out"
    assert main(["run", "--check", "--preset", str(preset), "--data", str(data), "--out", str(out)]) == 0
    checked = capsys.readouterr().out
    assert "preflight of" in checked and "(fitted)" in checked and "2024-01-02 .. 2024-03-28" in checked

    assert main(["run", "--preset", str(preset), "--data", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CSI All Share (SH000985)" in printed

    headline = (out / "tables" / "headline.md").read_text()
    assert "CSI300" in headline and "imported dataset" in headline and "synthetic" not in headline
    assert "What this run could not do" in headline and "SH000985" in headline
    runs = json.loads((out / "runs.json").read_text())
    assert "csi300" in runs["backtests"] and not {"csi500", "csi1000"} & set(runs["backtests"])
    client = MlflowClient(tracking_uri=runs["tracking_uri"])
    assert client.get_run(runs["backtests"]["csi300"]["recorder_id"]).info.status == "FINISHED"
    pred = pd.read_pickle(out / "stages" / "signal" / "pred.pkl")
    days = pred.index.get_level_values("datetime")
    assert days.min() == pd.Timestamp("2024-01-02") and days.max() == pd.Timestamp("2024-03-28")
    assert pred.index.get_level_values("instrument").nunique() > 1500
    from qlib_ext.analysis import registry

    html = Path(runs["report"]).read_text()            # every recorder's section, the missing index explained
    for rec in ("StyleProfileRecord", "QuantileRecord", "CrowdingRecord", "MarketReviewRecord", "PerformanceRecord",
                "HoldingsProfileRecord", "AttributionRecord", "StyleTimingRecord"):
        assert registry.get(rec).title in html, rec
    assert "SH000985" in html
    timings = json.loads((out / "timings.json").read_text())
    print(f"qlib-ext run --preset real on the fixture: {timings['total_seconds']:.0f} s")
