"""DailyKline / WeeklyKline + SequenceDataset: shapes, normalisation and masking against direct pandas."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.factors.requirements import MissingFieldsError
from qlib_ext.handlers import SequenceDataset
from qlib_ext.handlers.sequence import CHANNELS, FIELDS, SequencePanel

START, END = "2021-06-01", "2024-03-28"
SEGMENTS = {"train": ("2021-06-01", "2022-12-15"), "valid": ("2023-01-03", "2023-06-15"),
            "test": ("2023-07-03", "2024-03-28")}
RAW = ["$open", "$high", "$low", "$close", "$vwap", "$volume"]


def kline_dataset(kind: str, **kwargs) -> SequenceDataset:
    handler = {"class": kind, "module_path": "qlib_ext.handlers",
               "kwargs": {"start_time": START, "end_time": END, "neutralize": None, **kwargs}}
    return SequenceDataset(handler=handler, segments=SEGMENTS)


@pytest.fixture(scope="module")
def tiny_raw(tiny_market, tmp_path_factory):
    """Qlib on tiny; the raw bars of every instrument, as a {instrument: frame on the full calendar}."""
    qlib_ext.init(tiny_market, mlruns=tmp_path_factory.mktemp("kline_mlruns"))
    from qlib.data import D

    raw = D.features(D.instruments("csiall"), RAW, start_time="2020-01-01", end_time=END)
    raw.columns = list(FIELDS)
    cal = pd.DatetimeIndex(D.calendar(start_time="2020-01-01", end_time=END))
    return {s: g.droplevel(0).reindex(cal) for s, g in raw.groupby(level="instrument")}


@pytest.fixture(scope="module")
def daily(tiny_raw):
    return kline_dataset("DailyKline")


@pytest.fixture(scope="module")
def weekly(tiny_raw):
    return kline_dataset("WeeklyKline", n_weeks=8)


def carried(bars: pd.DataFrame) -> pd.DataFrame:
    """Pandas oracle of the suspension rule: flat bars at the last traded close, volume 0."""
    p = bars[list(FIELDS[:5])]
    traded = p.notna().all(axis=1) & (p > 0).all(axis=1) & (bars["volume"] > 0)
    close = bars["close"].where(traded).ffill()
    out = p.where(traded, np.nan)
    out = out.apply(lambda col: col.fillna(close))
    out["volume"] = bars["volume"].where(traded, 0.0).where(close.notna())
    out["traded"] = traded
    return out


def oracle_window(bars: pd.DataFrame, t: pd.Timestamp, steps: int, stride: int = 1) -> np.ndarray:
    """Normalised window of one stock-day from bars already carried/aggregated (rows on the calendar)."""
    pos = bars.index.get_loc(t)
    idx = [pos - stride * k for k in range(steps - 1, -1, -1)]
    out = np.zeros((steps, len(CHANNELS)))
    rows = [bars.iloc[i] if i >= 0 else None for i in idx]
    listed = [r is not None and np.isfinite(r["close"]) for r in rows]
    close_t = bars.iloc[pos]["close"]
    vols = [r["volume"] for r, ok in zip(rows, listed) if ok]
    mean_vol = np.mean(vols)
    for j, (r, ok) in enumerate(zip(rows, listed)):
        if not ok:
            continue
        for f in range(5):
            out[j, f] = r[FIELDS[f]] / close_t - 1
        out[j, 5] = r["volume"] / mean_vol if mean_vol > 0 else 0.0
        out[j, 6] = float(r["traded"])
    return out


def weekly_bars(c: pd.DataFrame) -> pd.DataFrame:
    """Pandas oracle: the rolling 5-session bar ending at each session, from carried daily bars."""
    listed = c["close"].notna()
    out = pd.DataFrame(index=c.index)
    out["open"] = [c["open"].iloc[max(i - 4, 0):i + 1].dropna().iloc[0] if listed.iloc[i] else np.nan
                   for i in range(len(c))]
    out["high"] = c["high"].rolling(5, min_periods=1).max()
    out["low"] = c["low"].rolling(5, min_periods=1).min()
    out["close"] = c["close"]
    vol = c["volume"].fillna(0.0)
    out["volume"] = vol.rolling(5, min_periods=1).sum()
    value = (c["vwap"].fillna(0.0) * vol).rolling(5, min_periods=1).sum()
    out["vwap"] = (value / out["volume"]).where(out["volume"] > 0, c["close"])
    out["traded"] = c["traded"].astype(float).rolling(5, min_periods=1).max() > 0
    return out.where(listed)


def find_sample(tiny_raw, predicate) -> tuple[str, pd.Timestamp]:
    """First (instrument, day) in the test segment whose carried bars satisfy ``predicate(carried, pos)``."""
    days = pd.date_range(*SEGMENTS["test"])
    for s, bars in sorted(tiny_raw.items()):
        c = carried(bars)
        for t in c.index[c.index.isin(days)]:
            pos = c.index.get_loc(t)
            if np.isfinite(c["close"].iloc[pos]) and predicate(c, pos):
                return s, t
    pytest.skip("no such sample in the tiny market")


def sample_row(sampler, inst: str, t: pd.Timestamp) -> int:
    rows = np.flatnonzero((sampler.index.get_level_values("datetime") == t)
                          & (sampler.index.get_level_values("instrument") == inst))
    assert len(rows) == 1, f"sample ({t.date()}, {inst}) not in the sampler"
    return int(rows[0])


def test_daily_shapes_and_spot_check_with_suspension(daily, tiny_raw):
    test = daily.prepare("test")
    assert test.d_feat == len(CHANNELS) == 7 and test.window == 40
    x = test.gather(np.arange(64))
    assert x.shape == (64, 40, 7) and x.dtype == np.float32
    assert daily.panel.bars.dtype == np.float32 and daily.panel.bars.ndim == 3
    # a stock-day with a suspended session inside its 40-session window
    inst, t = find_sample(tiny_raw, lambda c, pos: pos >= 40 and not c["traded"].iloc[pos - 39:pos + 1].all()
                          and c["traded"].iloc[pos])
    want = oracle_window(carried(tiny_raw[inst]), t, 40)
    got = test.gather(np.array([sample_row(test, inst, t)]))[0]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert (got[:, 6] == 0).any() and got[-1, 3] == 0.0  # the suspension is masked, last close is 0
    susp = got[:, 6] == 0
    assert (got[susp, 5] == 0).all()  # volume 0 on suspended sessions


def test_daily_label_is_the_vwap_forward_return(daily, tiny_raw):
    test = daily.prepare("test")
    inst, t = find_sample(tiny_raw, lambda c, pos: pos + 11 < len(c) and c["traded"].iloc[pos + 1]
                          and c["traded"].iloc[pos + 11])
    vwap = tiny_raw[inst]["vwap"]
    pos = vwap.index.get_loc(t)
    want = vwap.iloc[pos + 11] / vwap.iloc[pos + 1] - 1
    assert test.label[sample_row(test, inst, t)] == pytest.approx(want, rel=1e-5)


def test_short_history_is_masked_not_padded(daily, tiny_raw):
    """A new listing: steps before its first trade are all zero; the window uses nothing after t."""
    test = daily.prepare("test")
    inst, t = find_sample(tiny_raw, lambda c, pos: pos >= 40 and c["close"].iloc[pos - 39:pos + 1].isna().sum() >= 10)
    got = test.gather(np.array([sample_row(test, inst, t)]))[0]
    c = carried(tiny_raw[inst])
    pos = c.index.get_loc(t)
    n_before = int(c["close"].iloc[pos - 39:pos + 1].isna().sum())
    assert (got[:n_before] == 0).all() and (got[n_before:, 6] > 0).any()
    np.testing.assert_allclose(got, oracle_window(c, t, 40), rtol=2e-5, atol=2e-6)
    # no look-ahead: a panel built only from data up to t gives the same window
    feats = daily.handler.fetch(col_set="feature", data_key="infer")
    cut = SequencePanel.from_frame(feats.loc[pd.IndexSlice[:t, :], :], window=40)
    i = cut.dates.get_loc(t)
    n = cut.instruments.get_loc(inst)
    from qlib_ext.handlers.sequence import gather_windows

    again = gather_windows(cut.bars, cut.traded, cut.listed, np.array([i]), np.array([n]), 40)[0]
    np.testing.assert_array_equal(again, got)


def test_weekly_bar_is_the_aggregate_of_its_five_sessions(weekly, tiny_raw):
    test = weekly.prepare("test")
    assert test.window == 8 and test.gather(np.arange(3)).shape == (3, 8, 7)
    # one with a suspended session in one of its weekly bars, so the carry rule is exercised too
    inst, t = find_sample(tiny_raw, lambda c, pos: pos >= 45 and not c["traded"].iloc[pos - 39:pos + 1].all()
                          and c["traded"].iloc[pos])
    c = carried(tiny_raw[inst])
    wk = weekly_bars(c)
    want = oracle_window(wk, t, 8, stride=5)
    got = test.gather(np.array([sample_row(test, inst, t)]))[0]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    # bar k = 1 directly: sessions t-9..t-5 of the raw frame
    pos = c.index.get_loc(t)
    span = c.iloc[pos - 9:pos - 4]
    close_t = c["close"].iloc[pos]
    assert got[-2, 1] == pytest.approx(span["high"].max() / close_t - 1, abs=1e-6)
    assert got[-2, 2] == pytest.approx(span["low"].min() / close_t - 1, abs=1e-6)
    assert got[-2, 3] == pytest.approx(span["close"].iloc[-1] / close_t - 1, abs=1e-6)
    assert got[-2, 0] == pytest.approx(span["open"].iloc[0] / close_t - 1, abs=1e-6)


def test_every_window_is_finite(weekly, daily):
    for ds in (daily, weekly):
        s = ds.prepare("train")
        x = s.gather(np.arange(0, len(s), 7))
        assert np.isfinite(x).all()
        assert set(np.unique(x[..., 6])) <= {0.0, 1.0}


def test_missing_vwap_raises_and_fallback_is_finite(micro_market, tmp_path):
    root = tmp_path / "novwap"
    shutil.copytree(micro_market, root)
    for f in root.glob("features/*/vwap.day.bin"):
        f.unlink()
    qlib_ext.init(root, mlruns=tmp_path / "mlruns")
    handler = {"class": "DailyKline", "module_path": "qlib_ext.handlers",
               "kwargs": {"start_time": "2023-07-03", "end_time": "2024-03-15", "neutralize": None}}
    segments = {"train": ("2023-07-03", "2023-12-15"), "test": ("2024-01-02", "2024-03-15")}
    with pytest.raises(MissingFieldsError, match=r"(?s)\$vwap \(read by feature vwap, label LABEL0\).*--augment.*"
                       r"vwap='\(\$high\+\$low\+\$close\)/3'"):
        SequenceDataset(handler=handler, segments=segments)
    # present but empty (all NaN): named after loading, never a channel of zeros
    for f in root.glob("features/*/close.day.bin"):
        np.concatenate([np.fromfile(f, dtype="<f4")[:1],
                        np.full(f.stat().st_size // 4 - 1, np.nan, dtype="<f4")]).tofile(f.with_name("vwap.day.bin"))
    with pytest.raises(ValueError, match=r"\$vwap.*missing or all NaN"):
        SequenceDataset(handler=handler, segments=segments)
    handler["kwargs"]["vwap"] = "($high+$low+$close)/3"
    ds = SequenceDataset(handler=handler, segments=segments)
    s = ds.prepare("train")
    assert len(s) > 0 and np.isfinite(s.gather(np.arange(len(s)))).all()
    assert np.isfinite(s.label).mean() > 0.8


def test_weekly_rejects_window_and_bad_keywords(tiny_raw):
    from qlib_ext.handlers import DailyKline, WeeklyKline

    with pytest.raises(TypeError, match="n_weeks"):
        WeeklyKline(start_time=START, end_time=END, window=40)
    with pytest.raises(ValueError, match="neutralize"):
        DailyKline(start_time=START, end_time=END, neutralize="sector")
