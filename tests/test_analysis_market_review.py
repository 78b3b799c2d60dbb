"""MarketReviewRecord (figures 1-4): relative NAVs, the size factor NAV and the futures basis against
direct computations; optional inputs skipped with a logged reason; bad futures files named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.analysis import MarketReviewRecord
from qlib_ext.analysis.inputs import read_futures
from qlib_ext.analysis.metrics.market_review import annualised_basis, factor_nav, relative_nav
from qlib_ext.risk import build_risk, load_factor_returns
from qlib_ext.schema import ARTIFACTS, INDEX_INSTRUMENTS

BASE = "2023-12-29"


@pytest.fixture(scope="module")
def store(tiny_market, tmp_path_factory):
    return build_risk(tiny_market, out=tmp_path_factory.mktemp("risk") / "risk", export_qlib=False, progress=False)


@pytest.fixture(scope="module")
def qlib_on_tiny(tiny_market, tmp_path_factory):
    qlib_ext.init(tiny_market, mlruns=tmp_path_factory.mktemp("mlruns_review"))
    return tiny_market


def test_relative_nav_factor_nav_and_basis_by_hand():
    idx = pd.bdate_range("2023-12-27", periods=6)
    closes = pd.DataFrame({"A": [10, 11, 12, 13, 12, 14.0], "B": [5, 5, 4, 6, 6, 5.0]}, index=idx)
    nav = relative_nav(closes, "2023-12-30")                      # a Saturday: base = Friday 12-29
    assert nav.index[0] == pd.Timestamp("2023-12-29")
    assert nav.loc["2024-01-03", "A"] == pytest.approx(14 / 12) and nav.loc["2024-01-02", "B"] == pytest.approx(6 / 4)
    f = pd.Series([0.1, -0.2, 0.01, 0.02, -0.03, 0.05], index=idx, name="size")
    fn = factor_nav(f, BASE)
    assert fn.iloc[0] == 1.0 and fn.iloc[-1] == pytest.approx(1.02 * 0.97 * 1.05)
    with pytest.raises(ValueError, match="no session on or before the base date 2020-01-01"):
        relative_nav(closes, "2020-01-01")
    fut = pd.DataFrame({"date": idx[:3], "index": "A", "close": [9.5, 10.0, 12.6],
                        "expiry": pd.Timestamp("2024-01-19")})
    b = annualised_basis(fut, closes, min_days=1)
    for d, fc in zip(idx[:3], [9.5, 10.0, 12.6]):
        assert b.loc[d, "A"] == pytest.approx((fc / closes.loc[d, "A"] - 1) * 365 / (pd.Timestamp("2024-01-19") - d).days)
    with pytest.raises(KeyError, match="futures index 'C'"):
        annualised_basis(fut.assign(index="C"), closes)


def test_futures_file_errors_name_file_row_and_column(tmp_path):
    bad = tmp_path / "fut.csv"
    bad.write_text("date,index,close\n2024-01-02,csi500,5000\n")
    with pytest.raises(ValueError, match=r"fut.csv: missing columns \['expiry'\]"):
        read_futures(bad)
    bad.write_text("date,index,close,expiry\n2024-01-02,csi500,5000,2024-01-19\n2024-01-03,csi500,-1,2024-01-19\n")
    with pytest.raises(ValueError, match="fut.csv, row 3: close='-1'"):
        read_futures(bad)
    with pytest.raises(FileNotFoundError, match="futures price file"):
        read_futures(tmp_path / "none.csv")


def _futures_file(path: Path) -> Path:
    from qlib.data import D

    inst = INDEX_INSTRUMENTS["csi500"]
    spot = D.features([inst], ["$close"], start_time="2023-10-01", end_time="2024-03-28")["$close"].droplevel(0)
    fut = pd.DataFrame({"date": spot.index, "index": inst, "close": spot.to_numpy() * 0.99,
                        "expiry": spot.index + pd.Timedelta(days=60)})    # a 1% discount, 60 days out
    fut.to_csv(path, index=False)
    return path


def test_recorder_artifacts_metrics_and_optional_inputs(qlib_on_tiny, store, tmp_path, monkeypatch, caplog):
    from qlib.data import D
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    futures = _futures_file(tmp_path / "futures.csv")
    with R.start(experiment_name="review"):
        rec = R.get_recorder()
        MarketReviewRecord(rec, base_date=BASE, end="2024-03-28", risk_store=str(store), futures=str(futures)).generate()
    local = Path(rec.get_local_dir()) / "artifacts" / ARTIFACTS.MARKET_REVIEW
    for name in ("index_navs.png", "size_factor.png", "basis_csi500.png", "index_navs.csv", "size_nav.csv", "basis.csv"):
        assert (local / name).is_file(), name
    navs = pd.read_csv(local / "index_navs.csv", index_col=0, parse_dates=True)
    insts = [INDEX_INSTRUMENTS[k] for k in ("csi300", "csi500", "csi1000", "csiall")]
    closes = D.features(insts, ["$close"], start_time=BASE, end_time="2024-03-28")["$close"].unstack(level=0)
    want = closes.iloc[-1] / closes.iloc[0]
    np.testing.assert_allclose(navs.iloc[-1].to_numpy(), want[insts].to_numpy(), rtol=1e-6)
    metrics = rec.list_metrics()
    assert metrics["market_review.return_csi1000"] == pytest.approx(want[INDEX_INSTRUMENTS["csi1000"]] - 1, rel=1e-6)
    f = load_factor_returns(store, start="2024-01-01", end="2024-03-28")["size"]
    assert metrics["market_review.size_return"] == pytest.approx((1 + f).prod() - 1, rel=1e-6)
    basis = pd.read_csv(local / "basis.csv", index_col=0, parse_dates=True)["CSI500"]
    np.testing.assert_allclose(basis.to_numpy(), -0.01 * 365 / 60, rtol=1e-5)
    assert metrics["market_review.basis_min_csi500"] == pytest.approx(basis.min())
    summary = json.loads((local / "summary.json").read_text())
    assert summary["max_drawdown_csi300"] >= 0

    # no futures file, no risk store: figures 1, 2 and 4 are skipped with a logged reason
    log = logging.getLogger("qlib.qlib_ext.analysis")           # Qlib's loggers do not propagate
    log.addHandler(caplog.handler)
    try:
        with R.start(experiment_name="review_min"):
            rec2 = R.get_recorder()
            MarketReviewRecord(rec2, end="2024-03-28", risk_store=str(tmp_path / "no_store")).generate()
    finally:
        log.removeHandler(caplog.handler)
    arts = {Path(p).name for p in rec2.list_artifacts(ARTIFACTS.MARKET_REVIEW)}
    assert "index_navs.png" in arts and "size_factor.png" not in arts and not any(a.startswith("basis") for a in arts)
    assert "no futures price file given" in caplog.text and "size factor figure 4 left out" in caplog.text


def test_bad_inputs_fail_and_write_nothing(qlib_on_tiny, store, tmp_path, monkeypatch):
    from qlib.workflow import R

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "fut.csv"
    bad.write_text("date,index,close,expiry\n2024-01-02,csi500,5000,2024-01-19\n2024-01-03,SH000905,5000,soon\n")
    with R.start(experiment_name="review_bad"):
        rec = R.get_recorder()
        with pytest.raises(ValueError, match="fut.csv, row 3: expiry='soon'"):
            MarketReviewRecord(rec, end="2024-03-28", risk_store=str(store), futures=str(bad)).generate()
        with pytest.raises(ValueError, match="base_date 2024-06-28 is not before the end"):
            MarketReviewRecord(rec, base_date="2024-06-28", end="2024-03-28", risk_store=str(store)).generate()
        with pytest.raises(ValueError, match="indexes"):
            MarketReviewRecord(rec, indexes=["csi9999"])
    assert rec.list_artifacts(ARTIFACTS.MARKET_REVIEW) == []


def _without_index(src: Path, dst: Path, code: str) -> Path:
    """A view of dataset ``src`` (symlinks) whose features lack index ``code`` -- like real data without it."""
    dst.mkdir()
    for item in src.iterdir():
        if item.name != "features":
            (dst / item.name).symlink_to(item, target_is_directory=item.is_dir())
    (dst / "features").mkdir()
    for inst in (src / "features").iterdir():
        if inst.name != code.lower():
            (dst / "features" / inst.name).symlink_to(inst, target_is_directory=True)
    return dst


def test_absent_csi_all_share_is_named_and_the_rest_computed(tiny_market, tmp_path, monkeypatch):
    """Issue 17: an optional input absent (SH000985, the risk store, futures) is named in the section's
    missing.csv and in the report; the other indexes are still computed.  No index at all still fails."""
    from qlib.workflow import R

    from qlib_ext.analysis.report import build_report

    monkeypatch.chdir(tmp_path)
    code = INDEX_INSTRUMENTS["csiall"]
    data = _without_index(tiny_market, tmp_path / "no_csiall", code)
    qlib_ext.init(data, mlruns=tmp_path / "mlruns")
    try:
        with R.start(experiment_name="review_missing"):
            rec = R.get_recorder()
            out = MarketReviewRecord(rec, end="2024-03-28", risk_store=str(tmp_path / "no_store")).generate()
            assert list(out["index_navs"].columns) == ["CSI300", "CSI500", "CSI1000"]
            assert "return_csiall" not in out["metrics"] and np.isfinite(out["metrics"]["return_csi500"])
            missing = pd.read_csv(rec.download_artifact(f"{ARTIFACTS.MARKET_REVIEW}/missing.csv", str(tmp_path)),
                                  index_col=0)["effect"]
            assert any(code in k for k in missing.index) and "futures prices" in missing and "risk store" in missing
            assert "SH000985 has no $close in the dataset" in " ".join(missing)
            page = build_report(rec.id, tmp_path / "page.html").read_text()
            assert "Left out for want of an optional input" in page and "SH000985 has no $close" in page
            with pytest.raises(ValueError, match="no \\$close for any of the index instruments"):
                MarketReviewRecord(rec, indexes=["csiall"], end="2024-03-28").generate()
    finally:
        qlib_ext.init(tiny_market, mlruns=tmp_path / "mlruns_back")
