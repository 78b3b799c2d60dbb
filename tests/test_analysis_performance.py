"""Performance tables (report tables 11/23/30/33/35) against direct computations, and the recorder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.analysis import (
    PerformanceRecord,
    annual_turnover,
    calmar,
    excess_nav,
    excess_returns,
    information_ratio,
    max_drawdown,
    nav_frame,
    performance_summary,
    yearly_returns,
)
from qlib_ext.analysis.metrics.performance import annualized_return


def sample_excess(seed: int = 3, start: str = "2021-11-01", end: str = "2024-03-29") -> pd.Series:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, end)
    e = rng.standard_t(4, len(days)) * 0.004 + 0.0006
    e[len(days) // 2 : len(days) // 2 + 15] -= 0.006  # a drawdown episode
    return pd.Series(e, index=days, name="excess")


def brute_max_drawdown(values: list[float]) -> float:
    """Largest loss from any earlier NAV peak (the starting 1 included), by a double loop."""
    navs = [1.0]
    for r in values:
        navs.append(navs[-1] * (1 + r))
    worst = 0.0
    for j in range(1, len(navs)):
        for i in range(j):
            worst = max(worst, 1 - navs[j] / navs[i])
    return worst


def test_summary_equals_direct_computation():
    e = sample_excess()
    vals = e.tolist()
    n = len(vals)
    growth = math.exp(sum(math.log1p(r) for r in vals))
    ann = growth ** (252 / n) - 1
    mean = sum(vals) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in vals) / (n - 1))
    mdd = brute_max_drawdown(vals)
    got = performance_summary(e, ("2024-01-01", "2024-03-29"))

    assert got["annualized_excess"] == pytest.approx(ann, rel=1e-10)
    assert got["information_ratio"] == pytest.approx(mean / sd * math.sqrt(252), rel=1e-10)
    assert got["excess_max_drawdown"] == pytest.approx(mdd, rel=1e-10)
    assert got["calmar"] == pytest.approx(ann / mdd, rel=1e-10)
    for year in (2021, 2022, 2023, 2024):
        in_year = [r for d, r in zip(e.index, vals) if d.year == year]
        assert got[f"excess_{year}"] == pytest.approx(math.prod(1 + r for r in in_year) - 1, rel=1e-10)
    q1 = [r for d, r in zip(e.index, vals) if pd.Timestamp("2024-01-01") <= d <= pd.Timestamp("2024-03-29")]
    assert got["window_excess"] == pytest.approx(math.prod(1 + r for r in q1) - 1, rel=1e-10)
    assert got["window_max_drawdown"] == pytest.approx(brute_max_drawdown(q1), rel=1e-10)
    # the single functions agree with the summary
    assert annualized_return(e) == got["annualized_excess"] and calmar(e) == got["calmar"]
    assert information_ratio(e) == got["information_ratio"] and max_drawdown(e) == got["excess_max_drawdown"]
    assert yearly_returns(e).loc[2023] == got["excess_2023"]
    assert excess_nav(e).iloc[-1] == pytest.approx(growth, rel=1e-12)


def test_excess_from_a_qlib_report_and_turnover():
    rng = np.random.default_rng(8)
    days = pd.bdate_range("2023-01-02", periods=300)
    report = pd.DataFrame({"return": rng.normal(5e-4, 0.012, 300), "bench": rng.normal(2e-4, 0.011, 300),
                           "cost": rng.uniform(0, 6e-4, 300), "turnover": rng.uniform(0, 0.4, 300)}, index=days)
    diff = excess_returns(report)
    np.testing.assert_allclose(diff, report["return"] - report["bench"] - report["cost"])
    np.testing.assert_allclose(excess_returns(report, with_cost=False), report["return"] - report["bench"])
    ratio = excess_returns(report, mode="ratio")  # NAV = portfolio NAV / benchmark NAV
    rel = (1 + report["return"] - report["cost"]).cumprod() / (1 + report["bench"]).cumprod()
    np.testing.assert_allclose(excess_nav(ratio), rel, rtol=1e-12)
    assert annual_turnover(report["turnover"]) == pytest.approx(report["turnover"].sum() / 2 * 252 / 300)
    summary = performance_summary(diff, turnover=report["turnover"], constituent_weight=0.83)
    assert summary["annual_turnover"] == pytest.approx(report["turnover"].mean() / 2 * 252)
    assert summary["constituent_weight"] == 0.83
    with pytest.raises(KeyError, match="bench"):
        excess_returns(report.drop(columns="bench"))
    with pytest.raises(ValueError, match="mode"):
        excess_returns(report, mode="log")


def test_edge_cases_and_errors():
    up = pd.Series(0.001, index=pd.bdate_range("2024-01-02", periods=20))
    assert max_drawdown(up) == 0 and math.isnan(calmar(up)) and math.isnan(information_ratio(up))
    bad = up.copy()
    bad.iloc[3] = np.nan
    with pytest.raises(ValueError, match="2024-01-05"):
        performance_summary(bad)
    with pytest.raises(TypeError, match="DatetimeIndex"):
        max_drawdown(pd.Series([0.01, -0.02]))
    assert math.isnan(performance_summary(up, ("2025-01-01", "2025-03-31"))["window_excess"])
    navs = nav_frame({"a": up, "b": -up}, "2024-01-10", "2024-01-20")
    assert navs.iloc[0].tolist() == [1.0, 1.0] and navs.index[1] == pd.Timestamp("2024-01-10")
    assert navs["a"].iloc[-1] == pytest.approx(1.001 ** 8)  # 8 sessions in the window


def test_recorder_writes_tables_figures_and_metrics(tiny_market, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    qlib_ext.init(tiny_market, mlruns=tmp_path / "mlruns")
    e = sample_excess(5, "2022-01-04", "2024-03-28")
    rng = np.random.default_rng(1)
    bench = pd.Series(rng.normal(0, 0.01, len(e)), index=e.index)
    cost = pd.Series(2e-4, index=e.index)
    report = pd.DataFrame({"return": e + bench + cost, "bench": bench, "cost": cost,
                           "turnover": pd.Series(rng.uniform(0, 0.2, len(e)), index=e.index)})
    diagnostics = pd.DataFrame({"status": ["optimal", "relaxed", "fallback_w0"],
                                "constituent_weight": [0.80, 0.90, 0.10]})
    with R.start(experiment_name="perf"):
        rec = R.get_recorder()
        with pytest.raises(FileNotFoundError, match="PortAnaRecord"):
            PerformanceRecord(rec).generate()
        rec.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": report})
        rec.save_objects(artifact_path="optim", **{"diagnostics.pkl": diagnostics})
        PerformanceRecord(rec, label="CSI500").generate()

    table = rec.load_object("performance/table.pkl")
    want = performance_summary(e, turnover=report["turnover"], constituent_weight=0.85)  # solved rows only
    assert list(table.index) == ["CSI500"]
    pd.testing.assert_series_equal(table.loc["CSI500"], want, check_names=False, rtol=1e-9)
    assert table.loc["CSI500", "annualized_excess"] == pytest.approx(
        math.prod(1 + r for r in e) ** (252 / len(e)) - 1, rel=1e-9)
    metrics = rec.list_metrics()
    for key in ("annualized_excess", "information_ratio", "excess_max_drawdown", "calmar", "excess_2023",
                "window_excess", "window_max_drawdown", "annual_turnover", "constituent_weight"):
        assert metrics[f"performance.{key}"] == pytest.approx(want[key], rel=1e-6)
    arts = set(rec.list_artifacts("performance"))
    assert {f"performance/{n}" for n in PerformanceRecord(rec).list()} <= arts
    local = Path(rec.get_local_dir()) / "artifacts" / "performance"
    for png in ("excess_nav.png", "excess_nav_window.png"):
        assert (local / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = pd.read_csv(local / "table.csv", index_col=0)
    assert csv.loc["CSI500", "excess_2022"] == pytest.approx(want["excess_2022"])
    nav = rec.load_object("performance/excess_nav.pkl")
    assert nav.iloc[-1] == pytest.approx(math.prod(1 + r for r in e), rel=1e-9)
    assert "missing.csv" not in {Path(p).name for p in arts}
    # a backtest of another strategy (no diagnostics): the column is left out and the section names why
    with R.start(experiment_name="perf"):
        other = R.get_recorder()
        other.save_objects(artifact_path="portfolio_analysis", **{"report_normal_1day.pkl": report})
        out = PerformanceRecord(other).generate()
        assert "constituent_weight" not in out["table"] or out["table"]["constituent_weight"].isna().all()
        missing = pd.read_csv(other.download_artifact("performance/missing.csv", str(tmp_path)), index_col=0)
        assert "constituent weight left out" in missing.loc["optimizer diagnostics", "effect"]


def test_conventions_against_empyrical_quantstats_and_qlib():
    """Same convention, same number: geometric annualisation over 252 sessions, sample std, drawdown
    of the compounded NAV.  empyrical and quantstats agree with ours except that their drawdown does
    not count the starting NAV of 1 as a peak (a loss on day one is not a drawdown for them); Qlib's
    ``risk_analysis`` annualises arithmetically (mean x N) and draws down the *summed* returns, so only
    its information ratio (mean / std x sqrt(N)) is the same number (issue 1511 of Qlib asks why
    Qlib and quantstats disagree: this is why)."""
    empyrical = pytest.importorskip("empyrical")
    qs = pytest.importorskip("quantstats")
    from qlib.contrib.evaluate import risk_analysis

    from qlib_ext.analysis.metrics.performance import annualized_volatility

    e = sample_excess(9)
    e.iloc[0] = abs(e.iloc[0])  # a first-day gain: the drawdown conventions coincide
    got = performance_summary(e)
    assert got["annualized_excess"] == pytest.approx(empyrical.annual_return(e, period="daily"), rel=1e-10)
    assert got["annualized_excess"] == pytest.approx(qs.stats.cagr(e, periods=252), rel=1e-10)
    assert got["tracking_error"] == pytest.approx(empyrical.annual_volatility(e, period="daily"), rel=1e-10)
    assert got["tracking_error"] == pytest.approx(qs.stats.volatility(e, periods=252), rel=1e-10)
    assert got["tracking_error"] == annualized_volatility(e)
    assert got["information_ratio"] == pytest.approx(empyrical.sharpe_ratio(e, period="daily"), rel=1e-10)
    assert got["information_ratio"] == pytest.approx(qs.stats.sharpe(e, periods=252), rel=1e-10)
    assert got["excess_max_drawdown"] == pytest.approx(-empyrical.max_drawdown(e), rel=1e-10)
    assert got["excess_max_drawdown"] == pytest.approx(-qs.stats.max_drawdown(e), rel=1e-10)

    # a loss on day one: ours counts it, empyrical's equals ours once a zero day is put in front
    lossy = e.copy()
    lossy.iloc[0] = -0.05
    lead = pd.concat([pd.Series([0.0], index=[lossy.index[0] - pd.Timedelta(days=1)]), lossy])
    assert max_drawdown(lossy) == pytest.approx(-empyrical.max_drawdown(lead), rel=1e-10)

    qlib = risk_analysis(e, N=252)["risk"]
    assert got["information_ratio"] == pytest.approx(qlib["information_ratio"], rel=1e-10)
    assert qlib["annualized_return"] == pytest.approx(e.mean() * 252, rel=1e-10)  # arithmetic, not ours
    assert abs(qlib["annualized_return"] - got["annualized_excess"]) > 1e-4
