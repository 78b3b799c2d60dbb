"""Neutralize on the micro market: orthogonality, statsmodels, presets, sources, and inside DatasetH."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import qlib_ext
from qlib_ext.data.panel import read_panel
from qlib_ext.factors import PRICE_VOLUME_FACTORS, forward_return_label, loader_config
from qlib_ext.processors import NEUTRALIZE_PRESETS, Neutralize

START, END = "2023-07-03", "2024-03-15"


@pytest.fixture
def qlib_micro(micro_market, tmp_path):
    qlib_ext.init(micro_market, mlruns=tmp_path)
    return micro_market


def _label_df(extra: dict[str, str] | None = None) -> pd.DataFrame:
    """A handler-shaped float64 frame: (datetime, instrument) index, ("label", "LABEL0") (+ "feature") columns."""
    from qlib.data import D

    exprs = {"LABEL0": forward_return_label(10), **(extra or {})}
    raw = D.features(D.instruments("all"), list(exprs.values()), START, END).astype(np.float64)
    raw.columns = pd.MultiIndex.from_tuples([("label" if k == "LABEL0" else "feature", k) for k in exprs])
    return raw.swaplevel().sort_index()


def test_strict_label_is_neutral_and_matches_statsmodels(qlib_micro):
    df = _label_df()
    y0 = df[("label", "LABEL0")].copy()
    proc = Neutralize(preset="strict")
    expo = proc.exposures(df)
    assert list(expo.columns) == ["industry", "size", "ret_10", "std_10d", "turn_10d"]

    # the fetched exposures are the right numbers on the right rows: pandas on the raw bins
    close = read_panel(qlib_micro, "close").astype(np.float64)
    indep = {"industry": read_panel(qlib_micro, "industry"), "size": np.log(read_panel(qlib_micro, "mcap")),
             "ret_10": close / close.shift(10) - 1, "std_10d": (close / close.shift(1) - 1).rolling(10, 1).std(),
             "turn_10d": read_panel(qlib_micro, "turnover").rolling(10, 1).mean()}
    for name, panel in indep.items():
        want = panel.stack().reindex(df.index).to_numpy(np.float64)
        np.testing.assert_allclose(expo[name].to_numpy(), want, rtol=2e-5, atol=1e-7, equal_nan=True)

    out = proc(df.copy())
    z = out[("label", "LABEL0")]
    assert z.dtype == np.float64 and z.notna().mean() > 0.8
    usable = y0.notna() & expo.notna().all(axis=1)
    assert (~usable).any() and z[~usable].isna().all() and z[usable].notna().all()

    for day, zd in z.dropna().groupby(level="datetime"):
        ed = expo.loc[zd.index]
        assert abs(zd.mean()) < 1e-10 and abs(zd.std(ddof=1) - 1) < 1e-10, day
        for name in ("size", "ret_10", "std_10d", "turn_10d"):
            assert abs(np.corrcoef(zd, ed[name])[0, 1]) < 1e-8, (day, name)
        assert zd.groupby(ed["industry"].to_numpy()).mean().abs().max() < 1e-10, day

    days = z.dropna().index.get_level_values("datetime").unique()
    for day in days[[0, len(days) // 2, -1]]:
        rows = (df.index.get_level_values("datetime") == day) & usable.to_numpy()
        ed = expo[rows]
        design = np.column_stack([pd.get_dummies(ed["industry"]).to_numpy(float),
                                  ed[["size", "ret_10", "std_10d", "turn_10d"]].to_numpy()])
        e = sm.OLS(y0[rows].to_numpy(), design).fit().resid
        np.testing.assert_allclose(z[rows].to_numpy(), (e - e.mean()) / e.std(ddof=1), rtol=0, atol=1e-8)


def test_presets_sources_and_expressions(qlib_micro):
    extra = {k: PRICE_VOLUME_FACTORS[k] for k in ("size", "ret_10", "std_10d", "turn_10d")}
    extra["industry"] = "$industry"
    df = _label_df(extra)
    y = {}
    for preset in NEUTRALIZE_PRESETS:
        res = {src: Neutralize(preset=preset, source=src)(df.copy())[("label", "LABEL0")] for src in ("df", "qlib")}
        pd.testing.assert_series_equal(res["df"], res["qlib"], rtol=0, atol=1e-12)  # same numbers, either source
        y[preset] = res["qlib"]
    # auto: the df's columns where present (here all but industry), Qlib for the rest
    no_ind = df.drop(columns=[("feature", "industry")])
    auto = Neutralize(preset="strict", source="auto")
    assert list(auto.exposures(no_ind).columns) == list(NEUTRALIZE_PRESETS["strict"])
    pd.testing.assert_series_equal(auto(no_ind)[("label", "LABEL0")], y["strict"], rtol=0, atol=1e-12)
    bumped = no_ind.copy()  # proof the df column is the one used: change it, the result follows
    bumped[("feature", "size")] += np.random.default_rng(0).standard_normal(len(bumped))
    z_auto = auto(bumped.copy())[("label", "LABEL0")]
    assert (z_auto - y["strict"]).abs().max() > 0.05
    bumped[("feature", "industry")] = df[("feature", "industry")]
    z_df = Neutralize(preset="strict", source="df")(bumped)
    pd.testing.assert_series_equal(z_df[("label", "LABEL0")], z_auto, rtol=0, atol=1e-12)
    both = y["strict"].notna() & y["industry_size"].notna()
    assert both.sum() > 1000 and (y["strict"][both] - y["industry_size"][both]).abs().max() > 0.05
    # a raw expression and an explicit `against` list equal the preset; features stay untouched
    by_expr = Neutralize(against=["industry", "Log($mcap)"], source="qlib")(df.copy())
    pd.testing.assert_series_equal(by_expr[("label", "LABEL0")], y["industry_size"], atol=1e-12)
    pd.testing.assert_frame_equal(by_expr["feature"], df["feature"])
    # without industry: an intercept and size only -> mean 0, uncorrelated with size, industries not zeroed
    z = Neutralize(against=["size"])(df.copy())[("label", "LABEL0")].dropna()
    s = df.loc[z.index, ("feature", "size")]
    corr = z.groupby(level="datetime").apply(lambda v: np.corrcoef(v, s.loc[v.index])[0, 1])
    assert corr.abs().max() < 1e-8
    ind = df.loc[z.index, ("feature", "industry")].to_numpy()
    assert z.groupby([z.index.get_level_values("datetime"), ind]).mean().abs().max() > 0.1


def test_inside_dataset_from_config(qlib_micro):
    from qlib.data.dataset.handler import DataHandlerLP
    from qlib.utils import init_instance_by_config

    neutralize = {"class": "Neutralize", "module_path": "qlib_ext.processors",
                  "kwargs": {"fields_group": "label", "against": ["industry", "size"]}}
    handler = {"class": "DataHandlerLP", "module_path": "qlib.data.dataset.handler", "kwargs": {
        "instruments": "all", "start_time": START, "end_time": END,
        "data_loader": {"class": "QlibDataLoader", "kwargs": {"config": loader_config(["ret_10", "std_10d", "turn_10d"])}},
        "infer_processors": [{"class": "Neutralize", "module_path": "qlib_ext.processors",
                              "kwargs": {"fields_group": "feature", "preset": "industry_size"}}],
        "learn_processors": [{"class": "DropnaLabel"}, neutralize],
    }}
    ds = init_instance_by_config({"class": "DatasetH", "module_path": "qlib.data.dataset", "kwargs": {
        "handler": handler, "segments": {"train": (START, "2023-12-29"), "test": ("2024-01-02", END)}}})
    learn = ds.prepare("train", col_set=["feature", "label"], data_key=DataHandlerLP.DK_L)
    raw = ds.prepare("train", col_set=["feature", "label"], data_key=DataHandlerLP.DK_R)
    infer = ds.prepare("test", col_set="feature", data_key=DataHandlerLP.DK_I)

    lab = learn[("label", "LABEL0")].dropna()
    stats = lab.groupby(level="datetime").agg(["mean", "std", "count"])
    assert len(stats) > 100 and (stats["count"] >= 25).all()
    assert stats["mean"].abs().max() < 1e-5 and (stats["std"] - 1).abs().max() < 1e-5  # float32 data
    # the learn label is the processor applied to the raw label (with the DropnaLabel rows)
    want = Neutralize(against=["industry", "size"])(raw.dropna(subset=[("label", "LABEL0")]).astype(np.float64))
    np.testing.assert_allclose(learn[("label", "LABEL0")], want[("label", "LABEL0")], atol=1e-5, equal_nan=True)
    # features neutralised for inference too (infer_processors), each day mean 0 std 1
    f = infer["ret_10"].dropna().groupby(level="datetime")
    assert f.mean().abs().max() < 1e-5 and (f.std() - 1).abs().max() < 1e-5
    assert infer.index.get_level_values("datetime").min() >= pd.Timestamp("2024-01-02")


def test_config_errors(qlib_micro):
    from qlib.data.dataset.handler import DataHandlerLP

    assert not Neutralize().is_for_infer() and Neutralize(fields_group="feature").is_for_infer()
    with pytest.raises(TypeError, match="inference"):  # Qlib refuses a label processor at inference
        DataHandlerLP(instruments="all", start_time=START, end_time=END,
                      data_loader={"class": "QlibDataLoader", "kwargs": {"config": loader_config(["ret_10"])}},
                      infer_processors=[Neutralize()])
    with pytest.raises(ValueError, match="not both"):
        Neutralize(against=["size"], preset="strict")
    with pytest.raises(ValueError, match="loose"):
        Neutralize(preset="loose")
    with pytest.raises(ValueError, match="momentum"):
        Neutralize(against=["industry", "momentum"])
    with pytest.raises(ValueError, match="source"):
        Neutralize(source="csv")
    with pytest.raises(ValueError, match="min_names"):
        Neutralize(min_names=1)
    with pytest.raises(KeyError, match="size"):
        Neutralize(source="df")(_label_df({"industry": "$industry"}))
