"""Bad input to the Neutralize processor (all-NaN day, constant exposure, missing column) and to the risk
model build (missing field named, interrupted build leaves the old store, too little history)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from qlib_ext.processors import Neutralize
from qlib_ext.risk import build as risk_build
from qlib_ext.risk import build_risk, load_exposures

from .helpers import digest, leftovers

DAY_ONLY = shutil.ignore_patterns("*.1min.bin", "1min.txt")


# -- Neutralize ---------------------------------------------------------------------------------
@pytest.fixture()
def frame() -> pd.DataFrame:
    """Three days x 30 names: label, industry (3 groups), size."""
    rng = np.random.default_rng(0)
    idx = pd.MultiIndex.from_product([pd.bdate_range("2024-01-02", periods=3), [f"S{i:03d}" for i in range(30)]],
                                     names=["datetime", "instrument"])
    n = len(idx)
    df = pd.DataFrame({("feature", "industry"): rng.integers(0, 3, n).astype(float),
                       ("feature", "size"): rng.normal(size=n), ("label", "LABEL0"): rng.normal(size=n)}, index=idx)
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


def statsmodels_z(day: pd.DataFrame, against: list[str]) -> np.ndarray:
    """OLS residual of the label on industry dummies (+ continuous exposures), z-scored with ddof 1."""
    X = pd.get_dummies(day[("feature", "industry")].astype(int), dtype=float)
    for a in against:
        X[a] = day[("feature", a)].to_numpy()
    e = sm.OLS(day[("label", "LABEL0")].to_numpy(), X.to_numpy()).fit().resid
    return (e - e.mean()) / e.std(ddof=1)


def test_neutralize_all_nan_day_gives_nan_that_day_only(frame):
    days = frame.index.levels[0]
    frame.loc[days[1], ("label", "LABEL0")] = np.nan
    out = Neutralize(against=["industry", "size"], source="df")(frame.copy())["label", "LABEL0"]
    assert out.loc[days[1]].isna().all()
    for d in (days[0], days[2]):
        np.testing.assert_allclose(out.loc[d].to_numpy(), statsmodels_z(frame.loc[d], ["size"]), atol=1e-10)


def test_neutralize_constant_exposure_is_dropped_not_fatal(frame):
    frame[("feature", "size")] = 5.0
    out = Neutralize(against=["industry", "size"], source="df")(frame.copy())["label", "LABEL0"]
    for d in frame.index.levels[0]:
        np.testing.assert_allclose(out.loc[d].to_numpy(), statsmodels_z(frame.loc[d], []), atol=1e-10)


def test_neutralize_missing_exposure_column_names_it(frame):
    with pytest.raises(KeyError, match=r"no column named 'ret_10' in the data"):
        Neutralize(against=["industry", "ret_10"], source="df")(frame.drop(columns=[("feature", "size")]))


# -- risk build ---------------------------------------------------------------------------------
@pytest.fixture()
def data(micro_market, tmp_path) -> Path:
    return Path(shutil.copytree(micro_market, tmp_path / "qlib_data", ignore=DAY_ONLY))


def test_risk_missing_field_is_named_and_nothing_written(data):
    """Every missing field at once (a foreign dataset lacks several), with the import command that adds them."""
    for p in [*data.glob("features/*/turnover.day.bin"), *data.glob("features/*/mcap.day.bin")]:
        p.unlink()
    before = digest(data)
    with pytest.raises(FileNotFoundError, match=r"the risk model needs day fields that the dataset lacks: "
                                                r"'mcap' \(.*\), 'turnover' \(liquidity\) "
                                                r"\(features/<stock>/<field>\.day\.bin\); add them with "
                                                r"`qlib-ext data import --source <tushare-like files> --augment "):
        build_risk(data, progress=False)
    assert digest(data) == before


def test_risk_interrupted_build_leaves_the_old_store(data, monkeypatch):
    store = build_risk(data, progress=False, export_qlib=False)
    assert len(load_exposures(data)) > 0
    before = digest(store)
    real = risk_build.write_table

    def crash(table, path):
        if path.name == "covariance.parquet":
            raise OSError(28, "No space left on device (simulated)")
        real(table, path)

    monkeypatch.setattr(risk_build, "write_table", crash)
    with pytest.raises(OSError, match="No space left"):
        build_risk(data, progress=False, export_qlib=False)
    assert digest(store) == before
    assert leftovers(data, "risk") == []


def test_risk_too_little_history_names_the_window(data):
    with pytest.raises(ValueError, match=r"no date in \[None, 2023-06-01\] has style exposures.*2023-05-04\.\.2023-06-01"):
        build_risk(data, end="2023-06-01", progress=False)
    assert not (data / "risk").exists() and leftovers(data, "risk") == []
