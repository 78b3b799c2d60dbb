"""Qlib operators (D.features over .1min.bin) against the batch engine, inside Qlib expressions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import qlib_ext
from qlib_ext.ops import qlib_ops
from qlib_ext.ops.batch import compute_factors
from qlib_ext.ops.library import LIBRARY
from qlib_ext.ops.sources import BinSource

N_INST = 40


def _init(root, tmp_path, **kw):
    qlib_ext.init(root, mlruns=tmp_path / "mlruns", **kw)
    qlib_ops._CACHE.clear()


def _batch_panel(root, symbols):
    src = BinSource(root)
    vals = compute_factors(src.bars(symbols, 0, len(src.days)), device="cpu")
    return {f: pd.DataFrame(v.T, index=src.days, columns=symbols) for f, v in vals.items()}


@pytest.fixture(scope="module")
def tiny_both(tiny_market, tmp_path_factory):
    """Qlib-path and batch-path values of every factor for the first 40 instruments of tiny."""
    from qlib.data import D

    _init(tiny_market, tmp_path_factory.mktemp("q"), kernels=1)
    symbols = sorted(D.list_instruments(D.instruments("all"), as_list=True))[:N_INST]
    ops = {f.field: f"{f.op}()" for f in LIBRARY.values()}
    q = D.features(symbols, list(ops.values()) + ["Mean(MinSkew(), 20)", "Ref(MinTrend(), 1)", "$close"])
    return q, _batch_panel(tiny_market, symbols), ops


def test_every_factor_matches_batch(tiny_both):
    q, batch, ops = tiny_both
    assert len(ops) == len(LIBRARY) >= 15
    inst = q.index.get_level_values("instrument")
    day = q.index.get_level_values("datetime")
    for field, expr in ops.items():
        got = q[expr].to_numpy()                          # rows: listed stock-days
        panel = batch[field]
        want = panel.to_numpy()[panel.index.get_indexer(day), panel.columns.get_indexer(inst)]
        trading = q["$close"].notna().to_numpy()          # minute bars every session on tiny
        assert np.isfinite(got[trading]).mean() > 0.99 and np.isnan(got[~trading]).all(), field
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=field)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.nanstd(want), err_msg=field)


def test_ops_compose_in_daily_expressions(tiny_both):
    q, batch, _ = tiny_both
    mean20 = q["Mean(MinSkew(), 20)"].unstack(0)
    want = batch["mf_rskew"].rolling(20, min_periods=1).mean().reindex(index=mean20.index, columns=mean20.columns)
    np.testing.assert_allclose(mean20.to_numpy(), want.to_numpy(), rtol=1e-5, atol=1e-6)
    lag = q["Ref(MinTrend(), 1)"].unstack(0)
    want = batch["mf_trend"].shift(1).reindex(index=lag.index, columns=lag.columns)
    np.testing.assert_allclose(lag.to_numpy(), want.to_numpy(), rtol=1e-6, atol=1e-7)


def test_two_kernels_same_values(tiny_market, tmp_path):
    from qlib.data import D

    fields = ["Mean(MinCorrVR(), 7)", "MinSmart()", "Ref(MinVolHHI(), 2)"]
    _init(tiny_market, tmp_path, kernels=1)
    symbols = sorted(D.list_instruments(D.instruments("csi300"), as_list=True))[:6]
    one = D.features(symbols, fields, start_time="2023-06-01", end_time="2023-12-31")
    _init(tiny_market, tmp_path, kernels=2, expression_cache=None)
    two = D.features(symbols, fields, start_time="2023-06-01", end_time="2023-12-31")
    assert one.shape == two.shape and one.notna().to_numpy().mean() > 0.9
    pd.testing.assert_frame_equal(one.sort_index(), two.sort_index())


def test_days_outside_minute_window_are_nan(micro_market, tmp_path):
    """micro has minute bars for its last 5 sessions only."""
    from qlib.data import D
    from qlib.data.data import Cal

    _init(micro_market, tmp_path, kernels=1)
    days = pd.DatetimeIndex(Cal.calendar(freq="day"))
    symbols = sorted(D.list_instruments(D.instruments("all"), as_list=True))[:5]
    df = D.features(symbols, ["MinRVol()", "Mean(MinRVol(), 3)", "$close", "$high", "$low"],
                    start_time=days[-20], end_time=days[-1])
    inside = df.index.get_level_values("datetime") >= days[-5]
    assert df.loc[~inside, "MinRVol()"].isna().all() and df.loc[~inside, "$close"].notna().any()
    assert df.loc[inside, "MinRVol()"].notna().mean() > 0.9
    # a day whose bars never move (a one-word limit board: high = low) has zero realised volatility
    moved = inside & (df["$high"] > df["$low"]).to_numpy()
    assert (df.loc[moved, "MinRVol()"].dropna() > 0).all()
    assert (df.loc[inside & ~moved, "MinRVol()"].dropna() == 0).all()


def test_wrong_frequency_is_refused(micro_market, tmp_path):
    _init(micro_market, tmp_path, kernels=1)
    with pytest.raises(ValueError, match="freq"):
        qlib_ops.MinSkew().load("SH600000", 0, 10, "1min")


#: the operator names before the classes were generated from the library's table (kept as they were)
OP_NAMES = ["MinRVol", "MinSkew", "MinKurt", "MinDownVol", "MinCorrPV", "MinCorrVR", "MinRetOpen30",
            "MinRetClose30", "MinVShareOpen30", "MinVShareClose30", "MinTrend", "MinSmart", "MinAmp",
            "MinVolHHI", "MinTopVolRet"]


def test_operator_classes_are_generated_from_the_library():
    import pickle

    import qlib_ext.ops as ops

    assert [op.__name__ for op in qlib_ops.MINUTE_OPS] == OP_NAMES == [f.op for f in LIBRARY.values()]
    assert [op.__name__ for op in ops.CUSTOM_OPS] == OP_NAMES
    for op, f in zip(qlib_ops.MINUTE_OPS, LIBRARY.values()):
        assert getattr(qlib_ops, op.__name__) is op and op.factor == f.name and f.field in op.__doc__
        assert issubclass(op, qlib_ops.MinuteFactorOp) and str(op()) == f"{f.op}()"
        assert pickle.loads(pickle.dumps(op)) is op  # found by name, as Qlib's workers need
    # a new entry of the table is all an operator needs
    extra = qlib_ops.make_op(LIBRARY["rvol"].__class__("rvol", "MinRVolCopy", LIBRARY["rvol"].fn))
    assert extra.__name__ == "MinRVolCopy" and extra.factor == "rvol"
    from qlib_ext.ops.library import _factor

    with pytest.raises(ValueError, match="taken"):
        _factor("rskew", "MinOther")


def test_cache_is_keyed_by_dataset_identity(tmp_path):
    """A dataset rewritten at the same path is read afresh: values equal the batch engine on the new bars."""
    from qlib.data import D
    from qlib.data.data import Cal

    from qlib_ext.data.synth import build_market

    from conftest import micro_config

    root = tmp_path / "qlib_data"
    got = []
    for seed in (1, 2):
        build_market(micro_config(seed=seed), root, progress=False)
        qlib_ext.init(root, mlruns=tmp_path / "mlruns", kernels=1)  # the op cache is NOT cleared here
        days = pd.DatetimeIndex(Cal.calendar(freq="day"))
        symbols = sorted(D.list_instruments(D.instruments("all"), as_list=True))[:4]
        q = D.features(symbols, ["MinRVol()"], start_time=days[-5], end_time=days[-1])["MinRVol()"]
        want = _batch_panel(root, symbols)["mf_rvol"].stack().reindex(q.swaplevel().index).to_numpy()
        np.testing.assert_allclose(q.to_numpy(), want, rtol=1e-6)
        got.append(q.to_numpy())
    assert not np.allclose(got[0], got[1])  # the second dataset's bars, not the first one's cache
