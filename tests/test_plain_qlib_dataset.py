"""Our handlers, Neutralize and the GRU on a plain Qlib dataset (no vwap/amount/industry/mcap/turnover).

The dataset is the micro market turned plain by ``tests/plain_qlib.py``: adjusted float32 prices with
a stepping ``factor``.  Every missing field is named with its fix; with the documented keywords the
handlers run and give finite features and labels that match the source market's (adjusted prices are
the source's times a per-stock constant, so returns agree to float32 rounding).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plain_qlib import PLAIN_FIELDS, make_plain_qlib_dataset

import qlib_ext
from qlib_ext.factors import PRICE_VOLUME_FACTORS, forward_return_label
from qlib_ext.factors.requirements import MissingFieldsError, expression_fields, missing_field_uses
from qlib_ext.handlers import DailyKline, PriceVolume, SequenceDataset, WeeklyKline
from qlib_ext.processors import Neutralize

START, END = "2023-09-01", "2024-02-29"
PLAIN_KW = dict(on_missing="drop", label_price="$close", neutralize=None)
NEEDS_ABSENT = ("turn_10d", "turn_20d", "size")


@pytest.fixture(scope="module")
def plain(micro_market, tmp_path_factory):
    """The plain dataset with lower-case folders (as after the case fix), Qlib initialised on it."""
    root = make_plain_qlib_dataset(micro_market, tmp_path_factory.mktemp("plain") / "qlib", upper_case=False)
    qlib_ext.init(root, mlruns=tmp_path_factory.mktemp("plain_mlruns"))
    return root


def test_helper_writes_the_plain_shape(micro_market, tmp_path):
    root = make_plain_qlib_dataset(micro_market, tmp_path / "upper")
    folders = sorted(p.name for p in (root / "features").iterdir())
    assert folders and all(n == n.upper() for n in folders)
    stock = root / "features" / "SH600003"
    assert {p.name.split(".")[0] for p in stock.iterdir()} == set(PLAIN_FIELDS)
    factor = np.fromfile(stock / "factor.day.bin", dtype="<f4")[1:]
    assert len(np.unique(factor[np.isfinite(factor)])) == 3  # two steps
    close = np.fromfile(stock / "close.day.bin", dtype="<f4")[1:]
    assert close[np.isfinite(close)][0] == pytest.approx(1.0)


def test_expression_fields():
    assert expression_fields("Ref($VWAP, -11)/Ref($vwap, -1) - 1 + Log($mcap)") == ["vwap", "mcap"]
    assert expression_fields(PRICE_VOLUME_FACTORS["amp_10d"]) == ["high", "low", "close"]


def test_price_volume_names_every_missing_field_and_the_fixes(plain):
    with pytest.raises(MissingFieldsError) as err:
        PriceVolume(start_time=START, end_time=END)
    msg = str(err.value)
    for piece in ("PriceVolume", "$turnover (read by feature turn_10d, feature turn_20d)", "$mcap", "$vwap",
                  "$industry", "--augment", str(plain), "on_missing='drop'", "label_price='$close'",
                  "neutralize=None"):
        assert piece in msg, piece


def test_price_volume_runs_with_the_documented_keywords(plain, micro_market, tmp_path):
    from qlib.data import D

    h = PriceVolume(start_time=START, end_time=END, **PLAIN_KW)
    feat = h.fetch(col_set="feature")
    assert list(feat.columns) == [n for n in PRICE_VOLUME_FACTORS if n not in NEEDS_ABSENT]
    assert feat.notna().to_numpy().mean() > 0.95 and np.isfinite(feat.to_numpy()[feat.notna().to_numpy()]).all()
    raw_label = h.fetch(col_set="label", data_key=PriceVolume.DK_R)["LABEL0"]
    assert raw_label.notna().mean() > 0.8
    learn = h.fetch(col_set="label", data_key=PriceVolume.DK_L)["LABEL0"]
    assert len(learn) > 1000 and np.isfinite(learn).all()
    # the adjusted plain prices give the source market's returns (to float32 rounding)
    qlib_ext.init(micro_market, mlruns=tmp_path / "mlruns")
    try:
        src = D.features(D.instruments("csiall"), [PRICE_VOLUME_FACTORS["ret_10"], forward_return_label(10, "$close")],
                         START, END).swaplevel().sort_index()
    finally:
        qlib_ext.init(plain, mlruns=tmp_path / "mlruns")
    both = pd.concat([feat["ret_10"], raw_label, src.set_axis(["r", "y"], axis=1)], axis=1, join="inner").dropna()
    assert len(both) > 1000
    np.testing.assert_allclose(both["ret_10"], both["r"], rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(both["LABEL0"], both["y"], rtol=1e-4, atol=2e-6)


def test_price_volume_with_lightgbm_fits_on_plain_data(plain):
    from qlib.contrib.model.gbdt import LGBModel
    from qlib.data.dataset import DatasetH

    handler = PriceVolume(start_time=START, end_time=END, on_missing="drop", label_price="$close",
                          neutralize=["ret_10", "std_10d"])
    ds = DatasetH(handler, segments={"train": (START, "2023-12-15"), "valid": ("2023-12-18", "2024-01-15"),
                                     "test": ("2024-01-16", END)})
    model = LGBModel(num_boost_round=5, num_leaves=4, min_data_in_leaf=5, verbose=-1, num_threads=1)
    model.fit(ds)
    pred = model.predict(ds, "test")
    assert len(pred) > 100 and np.isfinite(pred).all()


def test_daily_kline_names_vwap_and_neutralisation_then_runs_with_keywords(plain):
    with pytest.raises(MissingFieldsError) as err:
        DailyKline(start_time=START, end_time=END)
    msg = str(err.value)
    for piece in ("DailyKline", "$vwap (read by feature vwap, label LABEL0)", "$industry", "$mcap",
                  "vwap='($high+$low+$close)/3'", "neutralize=None", "--augment"):
        assert piece in msg, piece
    with pytest.raises(MissingFieldsError, match=r"WeeklyKline: .*\$vwap \(read by feature vwap, label LABEL0\)"):
        WeeklyKline(start_time=START, end_time=END, n_weeks=4, neutralize=None)
    handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
               "kwargs": {"start_time": START, "end_time": END, "vwap": "($high+$low+$close)/3",
                          "neutralize": ["ret_10"], "window": 20}}
    ds = SequenceDataset(handler=handler, segments={"train": (START, "2023-12-15"), "test": ("2024-01-02", END)})
    s = ds.prepare("train")
    assert len(s) > 1000 and np.isfinite(s.gather(np.arange(0, len(s), 3))).all()
    assert np.isfinite(s.label).mean() > 0.8


def test_neutralize_names_industry_and_mcap(plain):
    from qlib.data import D

    idx = D.features(D.instruments("csiall"), ["$close"], START, "2023-10-31").swaplevel().sort_index().index
    rng = np.random.default_rng(0)
    df = pd.DataFrame({("label", "LABEL0"): rng.normal(size=len(idx))}, index=idx)
    with pytest.raises(MissingFieldsError) as err:
        Neutralize(preset="industry_size")(df.copy())
    msg = str(err.value)
    for piece in ("Neutralize(preset='industry_size')", "$industry (read by", "$mcap (read by", "exposure size",
                  "--augment", "neutralize=None"):
        assert piece in msg, piece
    with pytest.raises(MissingFieldsError, match=r"against=\['ret_10', 'std_10d'\]"):
        Neutralize(preset="strict")(df.copy())
    out = Neutralize(against=["ret_10", "std_10d"])(df.copy())["label", "LABEL0"]
    assert out.notna().mean() > 0.9
    day = out.groupby(level="datetime").std()
    assert np.allclose(day.dropna(), 1.0)


def test_upper_case_folders_name_the_case_fix(plain, micro_market, tmp_path):
    root = make_plain_qlib_dataset(micro_market, tmp_path / "upper")
    found = missing_field_uses({"feature ret_10": PRICE_VOLUME_FACTORS["ret_10"]}, root=root)
    assert found is not None and set(found[1]) == {"close"}
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    try:
        with pytest.raises(MissingFieldsError, match=r"(?s)\$close.*Fix: first the folder names.*tr A-Z a-z"):
            PriceVolume(start_time=START, end_time=END, **PLAIN_KW)
    finally:
        qlib_ext.init(plain, mlruns=tmp_path / "mlruns")


def test_gru_says_why_the_train_segment_has_no_labels(plain):
    from qlib_ext.models import GRUModel

    small = dict(hidden_size=4, num_layers=1, n_epochs=1, batch_size=256, num_threads=1, progress=False)
    stocks = ["SH600000", "SH600001", "SH600002", "SH600003", "SH600004", "SH600005"]
    handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
               "kwargs": {"instruments": stocks, "start_time": START, "end_time": END, "window": 10,
                          "vwap": "$close", "neutralize": ["ret_10"]}}
    ds = SequenceDataset(handler=handler, segments={"train": (START, "2023-12-15"), "test": ("2024-01-02", END)})
    with pytest.raises(ValueError, match=r"(?s)train segment .* no labelled samples.*Neutralize\(against=\['ret_10'\]\)"
                       r".*min_names=10.*at most 6 labelled names"):
        GRUModel(**small).fit(ds)
    # a train segment at the data's end: the label looks 11 sessions ahead
    handler["kwargs"].update(neutralize=None, instruments="csiall", end_time="2024-03-29")
    ds = SequenceDataset(handler=handler, segments={"train": ("2024-03-20", "2024-03-29")})
    with pytest.raises(ValueError, match=r"label Ref\(\$close, -11\).*looks 11 sessions ahead.*2024-03-29"):
        GRUModel(**small).fit(ds)


def test_keyword_errors_and_minute_factors(plain):
    from qlib_ext.handlers import MinuteFactors
    from qlib_ext.handlers.minute import MissingMinuteFactors

    with pytest.raises(MissingFieldsError, match="choose features whose fields exist"):
        PriceVolume(start_time=START, end_time=END, factors=["turn_10d", "size"], **PLAIN_KW)
    with pytest.raises(ValueError, match="on_missing must be one of"):
        PriceVolume(start_time=START, end_time=END, on_missing="fill", label_price="$close", neutralize=None)
    with pytest.raises(ValueError, match="non-empty list of exposures"):
        PriceVolume(start_time=START, end_time=END, neutralize=[], **{k: v for k, v in PLAIN_KW.items()
                                                                      if k != "neutralize"})
    with pytest.raises(MissingMinuteFactors, match="qlib-ext factors minute"):
        MinuteFactors(start_time=START, end_time=END, label_price="$close", neutralize=None)


def test_gru_names_the_label_field_that_is_empty_in_the_train_segment(plain, tmp_path):
    """$vwap only from 2024: the handler loads (some values exist), the GRU names the field and the dates."""
    import shutil

    from qlib_ext.models import GRUModel

    root = tmp_path / "late_vwap"
    shutil.copytree(plain, root)
    cal = pd.DatetimeIndex(pd.read_csv(root / "calendars" / "day.txt", header=None)[0])
    for f in root.glob("features/*/close.day.bin"):
        x = np.fromfile(f, dtype="<f4")
        dates = cal[int(x[0]): int(x[0]) + len(x) - 1]
        x[1:][dates < pd.Timestamp("2024-01-02")] = np.nan
        x.tofile(f.with_name("vwap.day.bin"))
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    try:
        handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
                   "kwargs": {"start_time": START, "end_time": "2024-03-29", "window": 5, "neutralize": None}}
        ds = SequenceDataset(handler=handler, segments={"train": (START, "2023-11-30"), "test": ("2024-01-02", END)})
        with pytest.raises(ValueError, match=r"train segment 2023-09-01..2023-11-30 has no labelled samples: no stock "
                                             r"has a traded bar.*no finite value at all in vwap \(\$vwap\) there"):
            GRUModel(n_epochs=1, hidden_size=4, num_layers=1, num_threads=1, progress=False).fit(ds)
    finally:
        qlib_ext.init(plain, mlruns=tmp_path / "mlruns")
